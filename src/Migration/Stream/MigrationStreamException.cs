namespace MiniVmm.Migration.Stream;

/// <summary>
/// A failure of the migration byte stream or of a layer reading or writing it. Carries the
/// stream offset the failure refers to (bytes from the start of the stream), or −1 when it is
/// not known; the offset is also part of <see cref="Exception.Message"/>.
/// </summary>
public class MigrationStreamException : Exception
{
    /// <summary>Creates an exception with no known offset.</summary>
    public MigrationStreamException(string message)
        : this(message, -1, null)
    {
    }

    /// <summary>Creates an exception with no known offset, caused by <paramref name="inner"/>.</summary>
    public MigrationStreamException(string message, Exception? inner)
        : this(message, -1, inner)
    {
    }

    /// <summary>
    /// Creates an exception at <paramref name="offset"/>; the message becomes
    /// "<paramref name="message"/> at offset N (0xN)" (or stays as given when the offset is −1).
    /// </summary>
    public MigrationStreamException(string message, long offset, Exception? inner = null)
        : this(message, offset, inner, AppendOffset(message, offset))
    {
    }

    /// <summary>
    /// For derived types that place the offset inside their message themselves:
    /// <paramref name="fullMessage"/> is used as the message as it is.
    /// </summary>
    protected MigrationStreamException(string detail, long offset, Exception? inner, string fullMessage)
        : base(fullMessage, inner)
    {
        Detail = detail;
        Offset = offset < 0 ? -1 : offset;
    }

    /// <summary>Stream offset the failure refers to, or −1 when unknown.</summary>
    public long Offset { get; }

    /// <summary>The message without the offset text.</summary>
    public string Detail { get; }

    /// <summary>Formats an offset the way every stream error shows it: "offset 4242 (0x1092)".</summary>
    public static string DescribeOffset(long offset) => $"offset {offset} (0x{offset:x})";

    private static string AppendOffset(string message, long offset) =>
        offset < 0 ? message : $"{message} at {DescribeOffset(offset)}";
}
