using MiniVmm.Migration.Savevm;

namespace MiniVmm.Migration.Testing;

/// <summary>One section body a handler wrote (without the header and footer the core frames it with).</summary>
/// <param name="Type">START, PART, END or FULL.</param>
/// <param name="Body">The bytes the handler wrote.</param>
public sealed record SavedSection(SectionType Type, byte[] Body);
