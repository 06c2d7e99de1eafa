namespace MiniVmm.Migration.Multifd;

/// <summary>The checked fixed fields of a received packet header.</summary>
/// <param name="Flags">SYNC or nothing.</param>
/// <param name="NormalPages">Data pages after the header (≤ 128).</param>
/// <param name="NextPacketSize">The sender's <c>next_packet_size</c> (informational; QEMU does not check it).</param>
/// <param name="PacketNumber">The sender's packet number (across all channels).</param>
public readonly record struct MultifdPacketInfo(MultifdPacketFlags Flags, int NormalPages, uint NextPacketSize, ulong PacketNumber)
{
    /// <summary>Whether this packet is a sync point.</summary>
    public bool IsSync => (Flags & MultifdPacketFlags.Sync) != 0;
}
