namespace MiniVmm.Migration.Savevm;

/// <summary>
/// Which QEMU the stream is written for and read from. The wire format is the same; the
/// choices that differ (iteration serialisation, which thread holds the big lock during
/// setup) follow the target.
/// </summary>
public enum WireTarget
{
    /// <summary>QEMU 7.2, the live peer: iteration stops at the first entry with data left; setup runs without the big lock.</summary>
    Qemu72,

    /// <summary>QEMU master: every entry iterates each round; setup runs with the big lock held.</summary>
    QemuMaster,
}
