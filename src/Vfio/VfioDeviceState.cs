namespace MiniVmm.Vfio;

/// <summary>
/// The migration states of a VFIO device (<c>enum vfio_device_mig_state</c> of the kernel uAPI,
/// with the kernel's numbers).
/// </summary>
public enum VfioDeviceState
{
    /// <summary>The device failed; only a device reset leaves this state. It can never be requested.</summary>
    Error = 0,
    /// <summary>Not running: no DMA, no P2P, state frozen.</summary>
    Stop = 1,
    /// <summary>Running normally.</summary>
    Running = 2,
    /// <summary>Stopped, with a saving data session that ends with the complete state.</summary>
    StopCopy = 3,
    /// <summary>Stopped, with a resuming data session that takes the state to load.</summary>
    Resuming = 4,
    /// <summary>Running but not initiating DMA or P2P traffic (P2P quiescent).</summary>
    RunningP2P = 5,
    /// <summary>Running, with a saving data session that streams precopy data.</summary>
    PreCopy = 6,
    /// <summary>P2P quiescent, with the precopy saving data session still open.</summary>
    PreCopyP2P = 7,
}
