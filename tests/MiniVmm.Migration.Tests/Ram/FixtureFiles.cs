using System.Security.Cryptography;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>The QEMU 7.2 fixture stream, its loader inputs and the figures of its README.</summary>
internal static class FixtureFiles
{
    public static string Directory => QemuFixtures.Qemu72;
    public const long RamSize = 64L << 20;
    public const string RamImageSha256 = "20ef06653be7e72abe8a38f8f551fe57ba90e2b31df7fcccf0493cbefc7ab321";

    public static string Stream => Path.Combine(Directory, "ram-64m-pattern.bin");

    /// <summary>The three loader inputs and their guest addresses, as on QEMU's command line.</summary>
    public static IReadOnlyList<(string Path, long Address)> LoaderInputs { get; } =
    [
        (Path.Combine(Directory, "pattern.bin"), 0),
        (Path.Combine(Directory, "marker8.bin"), 0x100000),
        (Path.Combine(Directory, "lastpage.bin"), 0x3fff000),
    ];

    public static byte[] ReadStream() => File.ReadAllBytes(Stream);

    public static string Sha256(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
