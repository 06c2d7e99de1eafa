using MiniVmm.Migration.Savevm;

namespace MiniVmm.Migration.Analysis;

/// <summary>The upper-case names the analyzer prints for section types (START, PART, END, FULL, ...).</summary>
public static class SectionTypeNames
{
    /// <summary>The printed name of <paramref name="type"/>; unknown bytes as hex.</summary>
    public static string Of(SectionType type) => type switch
    {
        SectionType.Eof => "EOF",
        SectionType.Start => "START",
        SectionType.Part => "PART",
        SectionType.End => "END",
        SectionType.Full => "FULL",
        SectionType.Subsection => "SUBSECTION",
        SectionType.VmDescription => "VMDESCRIPTION",
        SectionType.Configuration => "CONFIGURATION",
        SectionType.Command => "COMMAND",
        SectionType.Footer => "FOOTER",
        _ => $"0x{(byte)type:x2}",
    };
}
