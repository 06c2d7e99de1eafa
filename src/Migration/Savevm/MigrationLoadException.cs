using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// Loading a migration stream failed. The message starts with QEMU's wording for the same
/// failure, then what caused it, then the section and stream offset, e.g.
/// <c>error while loading state section id 2(ram): Illegal RAM offset 8000000 (in PART section
/// id 2 'ram' at offset 100000 (0x186a0))</c>. <see cref="MigrationStreamException.Offset"/> is
/// the innermost known offset.
/// </summary>
public sealed class MigrationLoadException : MigrationStreamException
{
    /// <summary>Creates the exception.</summary>
    public MigrationLoadException(string message, long offset, SectionContext? section = null, Exception? inner = null)
        : base(message, InnerOffset(inner) ?? offset, inner, Format(message, InnerOffset(inner) ?? offset, section, inner))
    {
        Section = section;
    }

    /// <summary>The section being loaded, when the failure happened inside one.</summary>
    public SectionContext? Section { get; }

    private static long? InnerOffset(Exception? inner) =>
        inner is MigrationStreamException { Offset: >= 0 } stream ? stream.Offset : null;

    private static string Format(string message, long offset, SectionContext? section, Exception? inner)
    {
        string cause = inner switch
        {
            null => "",
            MigrationLoadException load => ": " + load.Message,
            MigrationStreamException stream => ": " + stream.Detail,
            _ => ": " + inner.Message,
        };
        if (inner is MigrationLoadException)
        {
            return message + cause;
        }

        string where = offset < 0 ? "" : $"at {DescribeOffset(offset)}";
        string context = (section, where) switch
        {
            (null, "") => "",
            (null, _) => $" ({where})",
            (_, "") => $" (in {section})",
            _ => $" (in {section} {where})",
        };
        return message + cause + context;
    }
}
