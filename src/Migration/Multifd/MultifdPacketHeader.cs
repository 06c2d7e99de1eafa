using System.Buffers.Binary;

namespace MiniVmm.Migration.Multifd;

/// <summary>
/// One multifd packet header as QEMU 7.2 lays it out (1344 bytes, big-endian): magic, version,
/// flags, pages_alloc, normal_pages, next_packet_size (be32 each), packet_num (be64), 32 reserved
/// bytes, the null-terminated block name (256 bytes), then 128 be64 page offsets of which the
/// first <c>normal_pages</c> count. The page data (normal_pages × 4096 bytes) follows the header.
/// </summary>
public static class MultifdPacketHeader
{
    /// <summary>
    /// Writes a header for <paramref name="offsets"/> of the block named <paramref name="blockName"/>
    /// into <paramref name="destination"/> (<see cref="MultifdWire.PacketHeaderSize"/> bytes, cleared first).
    /// </summary>
    public static void Encode(
        Span<byte> destination, MultifdPacketFlags flags, ulong packetNumber, ReadOnlySpan<byte> blockName, ReadOnlySpan<long> offsets)
    {
        if (offsets.Length > MultifdWire.MaxPagesPerPacket)
        {
            throw new ArgumentOutOfRangeException(nameof(offsets), offsets.Length, $"a packet holds at most {MultifdWire.MaxPagesPerPacket} pages");
        }

        if (blockName.Length >= MultifdWire.RamBlockNameSize)
        {
            throw new ArgumentOutOfRangeException(nameof(blockName), blockName.Length, "a block name has at most 255 bytes");
        }

        Span<byte> header = destination[..MultifdWire.PacketHeaderSize];
        header.Clear();
        BinaryPrimitives.WriteUInt32BigEndian(header, MultifdWire.Magic);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], MultifdWire.Version);
        BinaryPrimitives.WriteUInt32BigEndian(header[8..], (uint)flags);
        BinaryPrimitives.WriteUInt32BigEndian(header[12..], MultifdWire.MaxPagesPerPacket);
        BinaryPrimitives.WriteUInt32BigEndian(header[16..], (uint)offsets.Length);
        BinaryPrimitives.WriteUInt32BigEndian(header[20..], (uint)(offsets.Length * MultifdWire.PageSize));
        BinaryPrimitives.WriteUInt64BigEndian(header[24..], packetNumber);
        blockName.CopyTo(header[MultifdWire.RamBlockNameAt..]);
        Span<byte> table = header[MultifdWire.HeaderFixedSize..];
        for (int i = 0; i < offsets.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(table[(i * sizeof(ulong))..], (ulong)offsets[i]);
        }
    }

    /// <summary>
    /// Reads and checks a header's fixed fields as QEMU 7.2's destination does (magic, version,
    /// no compression flag, pages_alloc ≤ 128, normal_pages ≤ pages_alloc). Block name and
    /// offsets are checked by the caller against its RAM (<see cref="BlockName"/>, <see cref="Offset"/>).
    /// </summary>
    /// <exception cref="MultifdChannelException">A field is wrong; the error names the channel, packet and field.</exception>
    public static MultifdPacketInfo Decode(ReadOnlySpan<byte> header, int channel, long packetIndex)
    {
        uint magic = MultifdWire.ReadBe32(header, 0);
        if (magic != MultifdWire.Magic)
        {
            throw new MultifdChannelException(channel, packetIndex, MultifdField.Magic, $"received magic 0x{magic:x}, expected 0x{MultifdWire.Magic:x}");
        }

        uint version = MultifdWire.ReadBe32(header, 4);
        if (version != MultifdWire.Version)
        {
            throw new MultifdChannelException(channel, packetIndex, MultifdField.Version, $"received version {version}, expected {MultifdWire.Version}");
        }

        var flags = (MultifdPacketFlags)MultifdWire.ReadBe32(header, 8);
        if ((flags & ~MultifdPacketFlags.Sync) != 0)
        {
            throw new MultifdChannelException(
                channel, packetIndex, MultifdField.Flags,
                $"flags 0x{(uint)flags:x} ask for compression or are unknown; MiniVmm supports multifd-compression none only (flags 0x0 or 0x1)");
        }

        uint pagesAlloc = MultifdWire.ReadBe32(header, 12);
        if (pagesAlloc > MultifdWire.MaxPagesPerPacket)
        {
            throw new MultifdChannelException(
                channel, packetIndex, MultifdField.PagesAlloc, $"{pagesAlloc} pages, at most {MultifdWire.MaxPagesPerPacket} fit a packet");
        }

        uint normalPages = MultifdWire.ReadBe32(header, 16);
        if (normalPages > pagesAlloc)
        {
            throw new MultifdChannelException(
                channel, packetIndex, MultifdField.NormalPages, $"{normalPages} pages, more than pages_alloc {pagesAlloc}");
        }

        return new MultifdPacketInfo(flags, (int)normalPages, MultifdWire.ReadBe32(header, 20), MultifdWire.ReadBe64(header, 24));
    }

    /// <summary>The block name (up to its first zero byte, at most 255 bytes).</summary>
    public static ReadOnlySpan<byte> BlockName(ReadOnlySpan<byte> header)
    {
        ReadOnlySpan<byte> field = header.Slice(MultifdWire.RamBlockNameAt, MultifdWire.RamBlockNameSize - 1);
        int end = field.IndexOf((byte)0);
        return end < 0 ? field : field[..end];
    }

    /// <summary>The offset of page <paramref name="index"/> (unchecked).</summary>
    public static ulong Offset(ReadOnlySpan<byte> header, int index) =>
        MultifdWire.ReadBe64(header, MultifdWire.HeaderFixedSize + (index * sizeof(ulong)));
}
