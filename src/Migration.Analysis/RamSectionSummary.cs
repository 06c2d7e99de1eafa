namespace MiniVmm.Migration.Analysis;

/// <summary>What the body of one RAM section (START, PART or END of <c>ram</c>) held.</summary>
public sealed class RamSectionSummary
{
    private readonly List<RamBlockEntry> _blocks = [];

    /// <summary>The records, by kind.</summary>
    public RamRecordCounts Records { get; } = new();

    /// <summary>The total RAM size announced by a MEM_SIZE record, when the section had one.</summary>
    public ulong? TotalRamBytes { get; internal set; }

    /// <summary>The MEM_SIZE block list, in stream order (empty unless the section had one).</summary>
    public IReadOnlyList<RamBlockEntry> Blocks => _blocks;

    internal void AddBlock(RamBlockEntry block) => _blocks.Add(block);
}
