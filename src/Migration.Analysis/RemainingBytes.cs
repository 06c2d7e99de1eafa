using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Analysis;

/// <summary>Checks lengths taken from the stream against what is left of it, before anything is read or allocated.</summary>
internal static class RemainingBytes
{
    /// <summary>Bytes left after the reader's position.</summary>
    public static long After(MigrationStreamReader reader, long streamLength) => Math.Max(0, streamLength - reader.Offset);

    /// <summary>
    /// Throws when <paramref name="length"/> (a length field read at <paramref name="fieldOffset"/>)
    /// is larger than the bytes left after the reader's position.
    /// </summary>
    public static void Ensure(MigrationStreamReader reader, long streamLength, ulong length, string what, long fieldOffset)
    {
        long left = After(reader, streamLength);
        if (length > (ulong)left)
        {
            throw new StreamAnalysisException(
                $"{what}: length {length} is larger than the {left} bytes left in the stream", fieldOffset);
        }
    }

    /// <summary>
    /// Skips <paramref name="count"/> bytes of <paramref name="what"/>, failing at once (as a
    /// truncation at the reader's position) when the stream is shorter.
    /// </summary>
    public static void Skip(MigrationStreamReader reader, long streamLength, long count, string what)
    {
        long left = After(reader, streamLength);
        if (count > left)
        {
            throw new MigrationStreamTruncatedException(what, reader.Offset, count, left);
        }

        reader.Skip(count);
    }
}
