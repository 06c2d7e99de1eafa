using MiniVmm.Migration.Savevm;

namespace MiniVmm.Migration.Testing;

/// <summary>How <see cref="LiveHandlerConformance"/> drives a handler.</summary>
public sealed record LiveHandlerConformanceOptions
{
    /// <summary>
    /// Takes the big lock of the handler's VM for the callbacks QEMU runs under it (save_prepare,
    /// completion, save_state, cleanup, every load callback); null when the handler does not need it.
    /// </summary>
    public Func<ISaveVmHandlers, IDisposable>? BigLock { get; init; }

    /// <summary>
    /// Runs with the big lock held right before completion, as the switchover stops the VM
    /// (<c>vm_stop_force_state(finish-migrate)</c>); devices that only hand over their last state
    /// once stopped need it.
    /// </summary>
    public Action<ISaveVmHandlers>? Switchover { get; init; }

    /// <summary>Runs with the big lock held after load_cleanup, as the destination starts its VM; devices that apply state at start need it.</summary>
    public Action<ISaveVmHandlers>? AfterLoad { get; init; }

    /// <summary>The version the sections are loaded as.</summary>
    public int VersionId { get; init; } = 1;

    /// <summary>Iteration rounds before the source is taken as never finishing.</summary>
    public int MaxRounds { get; init; } = 100_000;

    /// <summary>
    /// Truncated prefixes tried per section body: by default every one (every byte). A large
    /// body (RAM, device data) may be limited to the shortest prefixes and some spread over the
    /// rest, since each prefix is a whole load into a fresh destination.
    /// </summary>
    public int TruncationsPerSection { get; init; } = int.MaxValue;
}
