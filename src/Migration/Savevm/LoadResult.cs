namespace MiniVmm.Migration.Savevm;

/// <summary>What a successful load read.</summary>
/// <param name="BytesRead">Stream bytes consumed, vmdesc included.</param>
/// <param name="Sections">How many START/PART/END/FULL sections were loaded.</param>
/// <param name="Warnings">Non-fatal findings, in QEMU's words (e.g. a missing vmdesc).</param>
/// <param name="VmDescription">The vmdesc JSON, when one was sent and it was small enough to keep.</param>
public sealed record LoadResult(long BytesRead, int Sections, IReadOnlyList<string> Warnings, byte[]? VmDescription);
