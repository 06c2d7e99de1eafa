using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace MiniVmm.Host.Tests.Support;

/// <summary>Guest RAM images for end-to-end tests: random loader files, hashes, the incrementing guest's check, free ports.</summary>
public static class GuestRam
{
    /// <summary>The page size of the migration stream and of the incrementing guest.</summary>
    public const int PageSize = 4096;

    /// <summary>Where the incrementing guest starts writing (1 MiB).</summary>
    public const long GuestStart = 1 << 20;

    private const int BlockSize = 16 << 20;

    /// <summary>
    /// Writes <paramref name="length"/> random bytes to <paramref name="path"/> and returns them.
    /// Only for small files (a few MiB).
    /// </summary>
    public static byte[] WriteRandomFile(string path, int length, int seed)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        return bytes;
    }

    /// <summary>
    /// Writes a large file of pseudo-random pages quickly: one 16 MiB random block repeated, each
    /// copy with the block number and page number stamped over the first 16 bytes of every page,
    /// so that no two pages of the file are equal and none is zero. Returns the file's sha256.
    /// </summary>
    public static string WriteLargeRandomFile(string path, long length, int seed)
    {
        if (length % BlockSize != 0)
        {
            throw new ArgumentException($"length must be a multiple of {BlockSize}", nameof(length));
        }

        byte[] random = new byte[BlockSize];
        new Random(seed).NextBytes(random);
        byte[] block = new byte[BlockSize];
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        for (long b = 0; b < length / BlockSize; b++)
        {
            random.CopyTo(block, 0);
            for (int page = 0; page < BlockSize; page += PageSize)
            {
                BitConverter.TryWriteBytes(block.AsSpan(page, 8), b);
                BitConverter.TryWriteBytes(block.AsSpan(page + 8, 8), (long)page);
            }

            file.Write(block);
            sha.AppendData(block);
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>The sha256 of a file, read as a stream.</summary>
    public static async Task<string> Sha256Async(string path)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(file));
    }

    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it once this returns).</summary>
    public static int FreeTcpPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Waits until <paramref name="path"/> exists (e.g. a stream file renamed into place when complete).</summary>
    public static async Task WaitForFileAsync(string path, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            if (clock.Elapsed > timeout)
            {
                Assert.Fail($"{path} did not appear within {timeout.TotalSeconds} s");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Where two RAM dumps first differ, for an assertion's message ("equal" when they do not).</summary>
    public static string FirstDifference(byte[] expected, byte[] actual)
    {
        if (expected.Length != actual.Length)
        {
            return $"lengths differ: {expected.Length} and {actual.Length}";
        }

        int index = expected.AsSpan().CommonPrefixLength(actual);
        return index == expected.Length ? "equal" : $"first difference at 0x{index:x}: 0x{expected[index]:x2} expected, 0x{actual[index]:x2} found";
    }

    /// <summary>
    /// QEMU migration-test's check of the incrementing guest (<c>check_guests_ram</c>), written here
    /// independently of MiniVmm's own: in <paramref name="ram"/> (a dump from guest address 0),
    /// the first byte of every page from 1 MiB up equals the previous page's, except at most one
    /// place where it is exactly one less (mod 256). Returns null when consistent, else what broke.
    /// </summary>
    public static string? CheckIncrementingGuest(ReadOnlySpan<byte> ram, out int steps)
    {
        steps = 0;
        byte previous = ram[(int)GuestStart];
        for (long address = GuestStart + PageSize; address < ram.Length; address += PageSize)
        {
            byte current = ram[(int)address];
            if (current == previous)
            {
                continue;
            }

            if (current == (byte)(previous - 1) && steps == 0)
            {
                steps = 1;
                previous = current;
                continue;
            }

            return $"page 0x{address:x} holds 0x{current:x2} after 0x{previous:x2} ({steps} earlier step(s))";
        }

        return null;
    }
}
