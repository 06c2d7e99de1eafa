namespace MiniVmm.Vfio;

/// <summary>What an <see cref="IVfioSavingSource"/> produced on one call.</summary>
public enum VfioSavingPiece
{
    /// <summary>Nothing: in precopy, nothing more for now; in stop-copy, the state is complete.</summary>
    Nothing,
    /// <summary>Part of the initial data (counted in PRECOPY_INFO's initial_bytes).</summary>
    Initial,
    /// <summary>Data that changed since it was last produced (counted in dirty_bytes).</summary>
    Dirty,
    /// <summary>The stop-copy tail: state that exists only once the device is stopped.</summary>
    Final,
}
