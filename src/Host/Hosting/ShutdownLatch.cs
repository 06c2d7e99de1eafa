namespace MiniVmm.Host.Hosting;

/// <summary>
/// A one-shot request for the process to shut down (QEMU's shutdown request): the first cause
/// wins, later requests are ignored.
/// </summary>
public sealed class ShutdownLatch
{
    private readonly TaskCompletionSource<ShutdownCause> _requested = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes with the first cause requested.</summary>
    public Task<ShutdownCause> Requested => _requested.Task;

    /// <summary>Whether a shutdown has been requested.</summary>
    public bool IsRequested => _requested.Task.IsCompleted;

    /// <summary>Requests a shutdown; returns false if one was already requested.</summary>
    public bool Request(ShutdownCause cause) => _requested.TrySetResult(cause);
}
