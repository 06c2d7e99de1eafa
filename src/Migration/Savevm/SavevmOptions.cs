namespace MiniVmm.Migration.Savevm;

/// <summary>
/// The stream properties both ends must agree on (QEMU's machine-type compat properties), and
/// the machine this side is.
/// </summary>
public sealed record SavevmOptions
{
    /// <summary>The machine type name sent and checked in the configuration section (<c>none</c> for <c>-M none</c>).</summary>
    public string MachineName { get; init; } = "none";

    /// <summary>Which QEMU's behaviour to follow where 7.2 and master differ.</summary>
    public WireTarget Target { get; init; } = WireTarget.Qemu72;

    /// <summary>Whether the header is followed by the configuration section (<c>send-configuration</c>).</summary>
    public bool SendConfiguration { get; init; } = true;

    /// <summary>Whether every section ends with a footer (<c>send-section-footer</c>).</summary>
    public bool SendSectionFooter { get; init; } = true;

    /// <summary>Whether the vmdesc JSON follows EOF (the opposite of <c>suppress-vmdesc</c>).</summary>
    public bool SendVmDescription { get; init; } = true;

    /// <summary>The longest vmdesc JSON the loader keeps in memory (larger ones are skipped).</summary>
    public int MaxVmDescriptionBytes { get; init; } = 16 << 20;

    /// <summary>Whether iteration stops at the first entry that still has data (QEMU 7.2).</summary>
    public bool SerialiseIteration => Target == WireTarget.Qemu72;
}
