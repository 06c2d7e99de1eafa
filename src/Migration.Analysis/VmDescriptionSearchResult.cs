namespace MiniVmm.Migration.Analysis;

/// <summary>
/// What looking for the vmdesc at the end of a stream found: the trailer, or why there is none
/// (with the offset of the bad bytes when a damaged trailer was recognised).
/// </summary>
internal sealed record VmDescriptionSearchResult(VmDescriptionTrailer? Trailer, StreamAnalysisException? Problem);
