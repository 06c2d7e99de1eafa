namespace MiniVmm.Host.Tests.Support;

/// <summary>A VM program running as a child process with a QMP socket: <c>minivmm run</c> or QEMU.</summary>
public interface IVmProcess : IAsyncDisposable
{
    /// <summary>The process id.</summary>
    int Pid { get; }

    /// <summary>Whether the process has ended.</summary>
    bool HasExited { get; }

    /// <summary>Everything written to stderr so far.</summary>
    string Stderr { get; }

    /// <summary>Waits for the process to exit and returns its exit code.</summary>
    Task<int> WaitForExitAsync();

    /// <summary>Sends a POSIX signal to the process through <c>kill</c>.</summary>
    Task SignalAsync(string signal);
}
