namespace MiniVmm.Migration.Savevm;

/// <summary>The type byte that opens each top-level element of a QEMU migration stream.</summary>
public enum SectionType : byte
{
    /// <summary>End of the device state; the vmdesc trailer may follow.</summary>
    Eof = 0x00,
    /// <summary>First section of a live entry (carries idstr, instance and version).</summary>
    Start = 0x01,
    /// <summary>An iteration section of a live entry (section id only).</summary>
    Part = 0x02,
    /// <summary>The final section of a live entry (section id only).</summary>
    End = 0x03,
    /// <summary>A whole device state in one section (carries idstr, instance and version).</summary>
    Full = 0x04,
    /// <summary>A VMState subsection; appears only inside a section body.</summary>
    Subsection = 0x05,
    /// <summary>The JSON description of the device sections (after EOF).</summary>
    VmDescription = 0x06,
    /// <summary>The configuration section right after the header.</summary>
    Configuration = 0x07,
    /// <summary>A command (return path, postcopy, packaged data, ...).</summary>
    Command = 0x08,
    /// <summary>The footer after each START/PART/END/FULL section.</summary>
    Footer = 0x7e,
}
