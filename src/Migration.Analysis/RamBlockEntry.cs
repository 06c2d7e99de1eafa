namespace MiniVmm.Migration.Analysis;

/// <summary>One entry of the MEM_SIZE block list in a RAM START section.</summary>
/// <param name="IdStr">The RAM block's name, e.g. <c>pc.ram</c>.</param>
/// <param name="Length">The block's used length in bytes.</param>
/// <param name="GuestAddress">The region's guest physical address, sent only with x-ignore-shared.</param>
public sealed record RamBlockEntry(string IdStr, ulong Length, ulong? GuestAddress);
