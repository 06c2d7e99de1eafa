using System.Text.Json.Nodes;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// Decodes the bodies of one kind of section for the analyzer (<c>minivmm analyze</c>): a device
/// library plugs in the reader of its own section format, keyed by idstr, so that the analyzer
/// walks streams with that device's live sections instead of giving up.
/// </summary>
public interface IStreamSectionDecoder
{
    /// <summary>Whether this decoder reads the bodies of the entry <paramref name="idStr"/> (e.g. any <c>ID/vfio</c>).</summary>
    bool Decodes(string idStr);

    /// <summary>
    /// Reads one body (START, PART, END or FULL) written by version <paramref name="versionId"/>
    /// and leaves the reader right before the section footer. A length read from the stream must
    /// be checked against <paramref name="bytesLeft"/> (the bytes after the reader's offset)
    /// before it is used; errors are <see cref="MigrationStreamException"/>s with their offset.
    /// </summary>
    JsonObject DecodeBody(MigrationStreamReader reader, SectionType type, uint versionId, long bytesLeft);
}
