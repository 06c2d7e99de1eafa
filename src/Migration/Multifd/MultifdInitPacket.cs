using System.Buffers.Binary;

namespace MiniVmm.Migration.Multifd;

/// <summary>
/// The 64 bytes a multifd channel opens with: be32 magic, be32 version, the source VM's
/// 16-byte uuid (zeros unless set), the u8 channel id, then reserved zeros.
/// </summary>
public readonly record struct MultifdInitPacket(byte ChannelId, Guid Uuid = default)
{
    /// <summary>Writes the packet into <paramref name="destination"/> (at least <see cref="MultifdWire.InitPacketSize"/> bytes).</summary>
    public void Encode(Span<byte> destination)
    {
        Span<byte> packet = destination[..MultifdWire.InitPacketSize];
        packet.Clear();
        BinaryPrimitives.WriteUInt32BigEndian(packet, MultifdWire.Magic);
        BinaryPrimitives.WriteUInt32BigEndian(packet[4..], MultifdWire.Version);
        Uuid.TryWriteBytes(packet.Slice(8, 16), bigEndian: true, out _);
        packet[24] = ChannelId;
    }

    /// <summary>
    /// Reads and checks an init packet as QEMU 7.2's destination does: magic, version, the uuid
    /// against <paramref name="expectedUuid"/>, and a channel id below <paramref name="channels"/>.
    /// </summary>
    /// <exception cref="MultifdChannelException">A field is wrong; the error names it.</exception>
    public static MultifdInitPacket Decode(ReadOnlySpan<byte> packet, int channels, Guid expectedUuid = default)
    {
        uint magic = MultifdWire.ReadBe32(packet, 0);
        if (magic != MultifdWire.Magic)
        {
            throw new MultifdChannelException(-1, 0, MultifdField.Magic, $"received magic 0x{magic:x}, expected 0x{MultifdWire.Magic:x}");
        }

        uint version = MultifdWire.ReadBe32(packet, 4);
        if (version != MultifdWire.Version)
        {
            throw new MultifdChannelException(-1, 0, MultifdField.Version, $"received version {version}, expected {MultifdWire.Version}");
        }

        byte id = packet[24];
        var uuid = new Guid(packet.Slice(8, 16), bigEndian: true);
        if (uuid != expectedUuid)
        {
            throw new MultifdChannelException(id, 0, MultifdField.Uuid, $"received uuid '{uuid}', expected '{expectedUuid}'");
        }

        if (id >= channels)
        {
            throw new MultifdChannelException(
                -1, 0, MultifdField.ChannelId, $"received channel id {id}, but multifd-channels is {channels} (ids 0–{channels - 1})");
        }

        return new MultifdInitPacket(id, uuid);
    }
}
