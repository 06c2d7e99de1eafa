using System.Buffers.Binary;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Demo;

/// <summary>
/// Where the reference harness's <c>dirty-guest</c> example is: its own state (16 bytes: <c>u64 next_page, u64 rounds</c>,
/// little-endian) and the memory it implies: starting from zero RAM, the first byte of page
/// <c>p</c> (from page 256 up) is <c>rounds + (p &lt; next_page ? 1 : 0)</c> mod 256 and every
/// other byte is zero. Unlike QEMU's check_guests_ram rule, this sees lost writes: a page the
/// harness wrote whose write did not reach the destination breaks it.
/// </summary>
/// <param name="NextPage">The next page the guest writes.</param>
/// <param name="Rounds">How many times it went through all its pages.</param>
public sealed record HarnessGuestPosition(ulong NextPage, ulong Rounds)
{
    /// <summary>The first page the guest writes (1 MiB).</summary>
    public const long FirstPage = 256;

    /// <summary>Bytes of a page.</summary>
    public const int PageSize = 4096;

    /// <summary>Reads the position from <c>x-query-guest-harness</c>'s <c>state</c> member (base64 of 16 bytes).</summary>
    /// <exception cref="InvalidDataException">No state, or not 16 bytes.</exception>
    public static HarnessGuestPosition From(JsonNode? query)
    {
        string text = query?["state"]?.GetValue<string>()
            ?? throw new InvalidDataException($"x-query-guest-harness returned no state: {query?.ToJsonString()}");
        byte[] bytes = Convert.FromBase64String(text);
        return bytes.Length == 16
            ? new HarnessGuestPosition(BinaryPrimitives.ReadUInt64LittleEndian(bytes), BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)))
            : throw new InvalidDataException($"dirty-guest's state is 16 bytes, not {bytes.Length}");
    }

    /// <summary>Pages written since the guest started: a measure that only grows.</summary>
    public ulong PagesWritten(long pageCount) => Rounds * (ulong)(pageCount - FirstPage) + (NextPage - FirstPage);

    /// <summary>
    /// Null when <paramref name="ram"/> (a dump from address 0) is exactly what this state says
    /// the guest wrote; else the first difference. The first MiB is checked to be zero only with
    /// <paramref name="lowMemoryIsZero"/> (devices such as vfio-emu DMA into it).
    /// </summary>
    public string? Mismatch(ReadOnlySpan<byte> ram, bool lowMemoryIsZero = true)
    {
        long pages = ram.Length / PageSize;
        if (NextPage < FirstPage || NextPage >= (ulong)pages)
        {
            return $"next_page {NextPage} is outside {FirstPage}..{pages - 1}";
        }

        if (lowMemoryIsZero && ram[..(int)(FirstPage * PageSize)].IndexOfAnyExcept((byte)0) is int low and >= 0)
        {
            return $"byte 0x{low:x} below 1 MiB is not zero";
        }

        int wrong = 0;
        string? first = null;
        for (long page = FirstPage; page < pages; page++)
        {
            ReadOnlySpan<byte> bytes = ram.Slice((int)(page * PageSize), PageSize);
            byte expected = (byte)(Rounds + (page < (long)NextPage ? 1UL : 0UL));
            if (bytes[0] != expected || bytes[1..].IndexOfAnyExcept((byte)0) >= 0)
            {
                wrong++;
                first ??= $"page {page}: first byte 0x{bytes[0]:x2}, expected 0x{expected:x2}";
            }
        }

        return first is null ? null : $"{wrong} page(s) differ from the harness's state {this}; first: {first}";
    }
}
