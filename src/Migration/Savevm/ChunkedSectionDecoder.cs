using System.Text.Json.Nodes;
using MiniVmm.Migration.Analysis;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// The analyzer's reader of the sections of any <see cref="ChunkedLiveState"/> device: it
/// decodes the entries whose idstr is one of <see cref="Names"/> or ends with <c>/NAME</c>
/// (device sections are keyed <c>ID/NAME</c>), listing the geometry and the chunk indices; the
/// chunk bytes are skipped.
/// </summary>
public sealed class ChunkedSectionDecoder : IStreamSectionDecoder
{
    /// <summary>Creates a decoder for the sections named <paramref name="names"/> (e.g. <c>x-live-scratch</c>).</summary>
    public ChunkedSectionDecoder(params string[] names)
    {
        ArgumentNullException.ThrowIfNull(names);
        Names = names;
    }

    /// <summary>The section names decoded.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <inheritdoc />
    public bool Decodes(string idStr) =>
        Names.Any(name => idStr == name || idStr.EndsWith("/" + name, StringComparison.Ordinal));

    /// <inheritdoc />
    public JsonObject DecodeBody(MigrationStreamReader reader, SectionType type, uint versionId, long bytesLeft)
    {
        long start = reader.Offset;
        if (versionId is < 1 or > ChunkedLiveState.FormatVersion)
        {
            throw new MigrationStreamException($"chunked section: version {versionId} is not supported", start);
        }

        uint count = reader.GetBe32();
        uint size = reader.GetBe32();
        if (size is 0 or > ChunkedLiveState.MaxChunkSize)
        {
            throw new MigrationStreamException($"chunked section: chunk size {size} is out of range (1..{ChunkedLiveState.MaxChunkSize})", start + 4);
        }

        var indices = new JsonArray();
        long chunks = 0;
        while (true)
        {
            long at = reader.Offset;
            uint index = reader.GetBe32();
            if (index == ChunkedLiveState.EndOfBody)
            {
                break;
            }

            if (index >= count)
            {
                throw new MigrationStreamException($"chunked section: chunk index {index} is out of range (0..{(long)count - 1})", at);
            }

            long left = bytesLeft - (reader.Offset - start);
            if (size > left)
            {
                throw new MigrationStreamException($"chunked section: chunk {index} of {size} bytes runs past the end of the stream ({left} left)", reader.Offset);
            }

            reader.Skip(size);
            chunks++;
            if (indices.Count < 64)
            {
                indices.Add((long)index);
            }
        }

        return new JsonObject
        {
            ["format"] = "chunked",
            ["chunk_count"] = (long)count,
            ["chunk_size"] = (long)size,
            ["chunks"] = chunks,
            ["data_bytes"] = chunks * size,
            ["first_indices"] = indices,
        };
    }
}
