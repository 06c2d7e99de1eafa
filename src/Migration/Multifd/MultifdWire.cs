using System.Buffers.Binary;

namespace MiniVmm.Migration.Multifd;

/// <summary>
/// The fixed sizes and values of QEMU 7.2's multifd wire format (no compression): each channel
/// opens with a 64-byte <see cref="MultifdInitPacket"/>, then carries packets of a 1344-byte
/// <see cref="MultifdPacketHeader"/> followed by its data pages.
/// </summary>
public static class MultifdWire
{
    /// <summary>The magic number both packet kinds start with.</summary>
    public const uint Magic = 0x11223344;

    /// <summary>The only protocol version QEMU 7.2 writes and accepts.</summary>
    public const uint Version = 1;

    /// <summary>The init packet's size: magic, version, uuid[16], channel id, 39 reserved bytes.</summary>
    public const int InitPacketSize = 64;

    /// <summary>The most page offsets one packet holds (512 KiB of 4 KiB pages).</summary>
    public const int MaxPagesPerPacket = 128;

    /// <summary>The bytes of the block-name field (null-terminated).</summary>
    public const int RamBlockNameSize = 256;

    /// <summary>The fixed part of a packet header before the offsets: six be32, be64 packet number, 32 reserved bytes, the block name.</summary>
    public const int HeaderFixedSize = (6 * sizeof(uint)) + sizeof(ulong) + 32 + RamBlockNameSize;

    /// <summary>The packet header's size with room for <see cref="MaxPagesPerPacket"/> offsets (1344).</summary>
    public const int PacketHeaderSize = HeaderFixedSize + (MaxPagesPerPacket * sizeof(ulong));

    /// <summary>Where the block name starts in the header.</summary>
    internal const int RamBlockNameAt = (6 * sizeof(uint)) + sizeof(ulong) + 32;

    /// <summary>The page size multifd moves (the target page size).</summary>
    public const int PageSize = 4096;

    internal static uint ReadBe32(ReadOnlySpan<byte> bytes, int at) => BinaryPrimitives.ReadUInt32BigEndian(bytes[at..]);

    internal static ulong ReadBe64(ReadOnlySpan<byte> bytes, int at) => BinaryPrimitives.ReadUInt64BigEndian(bytes[at..]);
}
