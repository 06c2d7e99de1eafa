namespace MiniVmm.Host.Qmp;

/// <summary>
/// The one place that says which QEMU this program poses as on QMP (greeting and
/// <c>query-version</c>) and how it names its own package.
/// </summary>
public static class QemuCompatibility
{
    /// <summary>The QEMU major version MiniVmm is wire-compatible with.</summary>
    public const int Major = 7;

    /// <summary>The QEMU minor version.</summary>
    public const int Minor = 2;

    /// <summary>The QEMU micro version.</summary>
    public const int Micro = 0;

    /// <summary>What QMP reports as <c>package</c>.</summary>
    public const string Package = "MiniVmm 0.1";
}
