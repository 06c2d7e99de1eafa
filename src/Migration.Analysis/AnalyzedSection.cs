using System.Text.Json.Nodes;
using MiniVmm.Migration.Savevm;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// One top-level element the analyzer walked: a START/PART/END/FULL section or a COMMAND.
/// While the element is being read it is already in <see cref="StreamAnalysis.Sections"/>
/// with <see cref="Complete"/> false, so a failure inside it still shows what was read.
/// </summary>
public sealed class AnalyzedSection
{
    internal AnalyzedSection(SectionType type, long offset)
    {
        Type = type;
        Offset = offset;
    }

    /// <summary>START, PART, END, FULL or COMMAND.</summary>
    public SectionType Type { get; }

    /// <summary>Offset of the type byte.</summary>
    public long Offset { get; }

    /// <summary>Bytes from the type byte up to and including the footer (0 until <see cref="Complete"/>).</summary>
    public long Size { get; internal set; }

    /// <summary>False when the stream failed inside this element.</summary>
    public bool Complete { get; internal set; }

    /// <summary>The section id (sections only).</summary>
    public uint? SectionId { get; internal set; }

    /// <summary>The entry's idstr: from the header for START/FULL, from the START with the same id for PART/END.</summary>
    public string? IdStr { get; internal set; }

    /// <summary>The instance id, like <see cref="IdStr"/>.</summary>
    public uint? InstanceId { get; internal set; }

    /// <summary>The version id, like <see cref="IdStr"/>.</summary>
    public uint? VersionId { get; internal set; }

    /// <summary>The RAM records, for sections of the <c>ram</c> entry.</summary>
    public RamSectionSummary? Ram { get; internal set; }

    /// <summary>
    /// For FULL sections: the fields decoded with the vmdesc, as
    /// <c>{vmsd_name, version, fields: [{name, type, size, offset, value | values}], subsections}</c>.
    /// </summary>
    public JsonObject? State { get; internal set; }

    /// <summary>What a plugged-in <see cref="IStreamSectionDecoder"/> read from the body (VFIO records, a harness state...).</summary>
    public JsonObject? Decoded { get; internal set; }

    /// <summary>Body bytes skipped without decoding (no decoder for the entry), or null.</summary>
    public long? Skipped { get; internal set; }

    /// <summary>The command, for COMMAND elements.</summary>
    public MigrationCommand? Command { get; internal set; }

    /// <summary>The command's payload length, for COMMAND elements.</summary>
    public ushort? CommandLength { get; internal set; }

    /// <summary>For a PACKAGED command: the length of the sub-stream that follows (its sections are listed after it).</summary>
    public uint? PackageLength { get; internal set; }

    /// <summary>"START section id 2 'ram' instance 0", for messages.</summary>
    public string Describe()
    {
        if (Type == SectionType.Command)
        {
            return Command is { } command ? $"COMMAND {MigrationCommandLayout.Of(command).Name}" : "COMMAND";
        }

        string name = IdStr is null ? "" : $" '{IdStr}' instance {InstanceId}";
        return $"{SectionTypeNames.Of(Type)} section id {SectionId}{name}";
    }
}
