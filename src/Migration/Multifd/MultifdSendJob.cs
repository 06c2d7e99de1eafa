using MiniVmm.Migration.Ram;

namespace MiniVmm.Migration.Multifd;

/// <summary>
/// One packet for a send channel: up to 128 page offsets of one block (none for a bare SYNC),
/// its flags and its packet number. Built on the migration thread, sent by the channel's thread.
/// </summary>
internal sealed record MultifdSendJob(RamBlock? Block, long[] Offsets, int Count, MultifdPacketFlags Flags, ulong PacketNumber)
{
    /// <summary>The bytes this packet puts on its channel: the header and the pages.</summary>
    public long WireBytes => MultifdWire.PacketHeaderSize + ((long)Count * MultifdWire.PageSize);
}
