using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// The analyzer found something in a migration stream it cannot walk past: a bad header, an
/// unknown section type, a section the vmdesc does not describe, a length larger than the rest
/// of the stream. <see cref="MigrationStreamException.Offset"/> is where the offending bytes start.
/// </summary>
public sealed class StreamAnalysisException : MigrationStreamException
{
    /// <summary>Creates the exception for the bytes at <paramref name="offset"/>.</summary>
    public StreamAnalysisException(string message, long offset, Exception? inner = null)
        : base(message, offset, inner)
    {
    }
}
