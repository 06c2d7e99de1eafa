namespace MiniVmm.Vfio;

/// <summary>Configuration of a <see cref="DmaEngineDevice"/>.</summary>
public sealed record DmaEngineOptions
{
    /// <summary>Size of the device's internal state in MiB (at least 1, at most 2047).</summary>
    public int StateSizeMiB { get; init; } = 4;

    /// <summary>Whether the device advertises <see cref="VfioMigrationFlags.P2P"/>.</summary>
    public bool SupportsP2P { get; init; } = true;

    /// <summary>Whether the device advertises <see cref="VfioMigrationFlags.PreCopy"/>.</summary>
    public bool SupportsPreCopy { get; init; } = true;

    /// <summary>
    /// Whether a background worker performs DMA by itself while the device may initiate DMA. When
    /// false, DMA happens only through <see cref="DmaEngineDevice.PerformDma"/> (deterministic).
    /// </summary>
    public bool RunWorker { get; init; } = true;

    /// <summary>DMA operations the worker performs per burst.</summary>
    public int WorkerBurst { get; init; } = 16;

    /// <summary>Pause of the worker between bursts.</summary>
    public TimeSpan WorkerPause { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Bytes one DMA operation writes into guest memory and changes in the state (a power of two, 8 to 4096).</summary>
    public int DmaBlockSize { get; init; } = 512;

    /// <summary>First guest physical address the engine writes to.</summary>
    public ulong DmaWindowStart { get; init; }

    /// <summary>Length of the guest window the engine writes to; 0 means up to the end of guest memory.</summary>
    public ulong DmaWindowLength { get; init; }

    /// <summary>Seeds the power-on state and the engine's address/data generator.</summary>
    public ulong Seed { get; init; } = 0x5EED;

    /// <summary>The device name.</summary>
    public string Name { get; init; } = "dma-engine";

    /// <summary>
    /// Fault injection: every arc into STOP_COPY fails with EIO, as a device whose firmware
    /// cannot stop in a consistent state would; the device stays where it was.
    /// </summary>
    public bool FailStopCopy { get; init; }
}
