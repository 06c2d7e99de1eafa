using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Multifd;

/// <summary>
/// A multifd channel failed: a packet broke the format (which <see cref="Field"/> of which
/// packet on which channel), or its connection failed. The migration fails with it; the
/// source keeps running.
/// </summary>
public sealed class MultifdChannelException : MigrationStreamException
{
    /// <summary>Creates the error for <paramref name="channel"/> (-1 before the init packet named it).</summary>
    public MultifdChannelException(int channel, long packet, MultifdField field, string detail, Exception? inner = null)
        : base(Describe(channel, packet, field, detail), inner)
    {
        Channel = channel;
        Packet = packet;
        Field = field;
    }

    /// <summary>The channel id (-1: not known yet).</summary>
    public int Channel { get; }

    /// <summary>The packet's position on its channel, counting the init packet as 0 (-1: not about a packet).</summary>
    public long Packet { get; }

    /// <summary>The field at fault.</summary>
    public MultifdField Field { get; }

    private static string Describe(int channel, long packet, MultifdField field, string detail)
    {
        string where = channel < 0 ? "multifd channel (id not known yet)" : $"multifd channel {channel}";
        string which = packet < 0 ? "" : packet == 0 ? ", init packet" : $", packet {packet}";
        return $"{where}{which}, field {FieldName(field)}: {detail}";
    }

    private static string FieldName(MultifdField field) => field switch
    {
        MultifdField.Magic => "magic",
        MultifdField.Version => "version",
        MultifdField.Uuid => "uuid",
        MultifdField.ChannelId => "id",
        MultifdField.Flags => "flags",
        MultifdField.PagesAlloc => "pages_alloc",
        MultifdField.NormalPages => "normal_pages",
        MultifdField.RamBlock => "ramblock",
        MultifdField.Offset => "offset",
        MultifdField.PageData => "page data",
        _ => "header",
    };
}
