namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// A real <c>qemu-system-x86_64</c> (QEMU 7.2) child process started with the same arguments a
/// <c>minivmm run</c> takes and a QMP socket; stdout and stderr captured; killed when disposed.
/// </summary>
public sealed class QemuProcess : VmChildProcess
{
    /// <summary>The QEMU binary the interop tests drive.</summary>
    public const string Binary = "/usr/bin/qemu-system-x86_64";

    /// <summary>How long any single wait lasts before the test fails.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private QemuProcess(string[] arguments)
        : base(Binary, arguments, "QEMU", DefaultTimeout)
    {
    }

    /// <summary>Starts QEMU with <paramref name="arguments"/>.</summary>
    public static QemuProcess Start(params string[] arguments) => new(arguments);

    /// <summary>Starts QEMU with a QMP socket at <paramref name="socketPath"/> (as <c>minivmm run</c> is started) and waits for the socket.</summary>
    public static async Task<QemuProcess> StartWithQmpAsync(string socketPath, params string[] extraArguments)
    {
        QemuProcess child = Start([.. extraArguments, .. QmpArguments(socketPath)]);
        await child.WaitForFileAsync(socketPath);
        return child;
    }
}
