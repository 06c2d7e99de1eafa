namespace MiniVmm.Migration.Savevm;

/// <summary>
/// What a section carries, for accounting the stream's bytes (metrics, the migration timeline):
/// guest RAM, VFIO device state, a guest harness's state, or anything else (small device
/// states, and the stream's own framing: header, configuration, commands, EOF, vmdesc). A live
/// handler says its kind with <see cref="ISaveVmHandlers.Kind"/>; VMState entries are
/// <see cref="Other"/>.
/// </summary>
public enum SectionKind
{
    /// <summary>Everything that is not one of the kinds below, and the stream's framing outside sections.</summary>
    Other = 0,

    /// <summary>Guest RAM (the <c>ram</c> section).</summary>
    Ram = 1,

    /// <summary>VFIO device data and config (<c>ID/vfio</c> sections).</summary>
    Vfio = 2,

    /// <summary>A guest harness's own state (<c>x-guest-harness</c>).</summary>
    Harness = 3,
}

/// <summary>Names of <see cref="SectionKind"/> values as metrics and traces spell them.</summary>
public static class SectionKindNames
{
    /// <summary>Every kind, in declaration order.</summary>
    public static IReadOnlyList<SectionKind> All { get; } = Array.AsReadOnly(Enum.GetValues<SectionKind>());

    /// <summary>The lowercase name used as the <c>section.kind</c> tag: <c>ram</c>, <c>vfio</c>, <c>harness</c> or <c>other</c>.</summary>
    public static string ToTagValue(this SectionKind kind) => kind switch
    {
        SectionKind.Ram => "ram",
        SectionKind.Vfio => "vfio",
        SectionKind.Harness => "harness",
        _ => "other",
    };
}
