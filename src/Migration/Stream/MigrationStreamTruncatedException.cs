namespace MiniVmm.Migration.Stream;

/// <summary>
/// The transport ended before a read could be satisfied. <see cref="MigrationStreamException.Offset"/>
/// is where the failed read began.
/// </summary>
public sealed class MigrationStreamTruncatedException : MigrationStreamException
{
    /// <summary>
    /// Creates the exception for a read of <paramref name="what"/> starting at
    /// <paramref name="offset"/> that needed <paramref name="needed"/> bytes and got only
    /// <paramref name="got"/>.
    /// </summary>
    public MigrationStreamTruncatedException(string what, long offset, long needed, long got)
        : base(
            $"unexpected end of stream while reading {what} (needed {needed} {Bytes(needed)}, got {got})",
            offset,
            null,
            $"unexpected end of stream at {DescribeOffset(offset)} while reading {what} (needed {needed} {Bytes(needed)}, got {got})")
    {
        What = what;
        BytesNeeded = needed;
        BytesReceived = got;
    }

    private static string Bytes(long count) => count == 1 ? "byte" : "bytes";

    /// <summary>What was being read (e.g. "be32", "counted string", a caller-supplied name).</summary>
    public string What { get; }

    /// <summary>Bytes the read needed.</summary>
    public long BytesNeeded { get; }

    /// <summary>Bytes that arrived before the transport ended.</summary>
    public long BytesReceived { get; }
}
