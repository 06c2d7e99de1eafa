namespace MiniVmm.Vfio;

/// <summary>
/// The migration capabilities a VFIO device advertises (<c>VFIO_MIGRATION_*</c> of
/// <c>struct vfio_device_feature_migration</c>, with the kernel's bit values).
/// </summary>
[Flags]
public enum VfioMigrationFlags
{
    /// <summary>No capability (not a valid device: STOP_COPY is mandatory).</summary>
    None = 0,
    /// <summary>STOP, RUNNING, STOP_COPY and RESUMING; mandatory for every migratable device.</summary>
    StopCopy = 1 << 0,
    /// <summary>Adds RUNNING_P2P (and PRE_COPY_P2P together with <see cref="PreCopy"/>).</summary>
    P2P = 1 << 1,
    /// <summary>Adds PRE_COPY (and PRE_COPY_P2P together with <see cref="P2P"/>).</summary>
    PreCopy = 1 << 2,
}
