namespace MiniVmm.Migration.Control;

/// <summary>The states of a migration (QEMU's <c>MigrationStatus</c>), source and destination.</summary>
public enum MigrationStatus
{
    /// <summary><c>none</c>: no migration has started.</summary>
    None,
    /// <summary><c>setup</c>: connecting and running the setup phase.</summary>
    Setup,
    /// <summary><c>cancelling</c>: a cancel was asked for; the thread is stopping.</summary>
    Cancelling,
    /// <summary><c>cancelled</c>: cancelled and cleaned up.</summary>
    Cancelled,
    /// <summary><c>active</c>: iterating (source) or loading (destination).</summary>
    Active,
    /// <summary><c>postcopy-active</c>.</summary>
    PostcopyActive,
    /// <summary><c>postcopy-paused</c>.</summary>
    PostcopyPaused,
    /// <summary><c>postcopy-recover</c>.</summary>
    PostcopyRecover,
    /// <summary><c>completed</c>: all state moved.</summary>
    Completed,
    /// <summary><c>failed</c>: see the error.</summary>
    Failed,
    /// <summary><c>colo</c>.</summary>
    Colo,
    /// <summary><c>pre-switchover</c>: paused before switchover (capability pause-before-switchover).</summary>
    PreSwitchover,
    /// <summary><c>device</c>: the VM is stopped and the device state is being sent.</summary>
    Device,
    /// <summary><c>wait-unplug</c>.</summary>
    WaitUnplug,
}

/// <summary>QAPI names and predicates of <see cref="MigrationStatus"/>.</summary>
public static class MigrationStatusNames
{
    private static readonly string[] Names =
    [
        "none", "setup", "cancelling", "cancelled", "active", "postcopy-active", "postcopy-paused",
        "postcopy-recover", "completed", "failed", "colo", "pre-switchover", "device", "wait-unplug",
    ];

    /// <summary>The QAPI spelling, e.g. <c>pre-switchover</c>.</summary>
    public static string ToQapiName(this MigrationStatus status) => Names[(int)status];

    /// <summary>Parses a QAPI name.</summary>
    public static bool TryParse(string name, out MigrationStatus status)
    {
        int index = Array.IndexOf(Names, name);
        status = index < 0 ? default : (MigrationStatus)index;
        return index >= 0;
    }

    /// <summary>QEMU's <c>migration_is_running</c>: a migration holds the VM's migration slot.</summary>
    public static bool IsRunning(this MigrationStatus status) => status is MigrationStatus.Setup
        or MigrationStatus.Active or MigrationStatus.PostcopyActive or MigrationStatus.PostcopyPaused
        or MigrationStatus.PostcopyRecover or MigrationStatus.PreSwitchover or MigrationStatus.Device
        or MigrationStatus.WaitUnplug or MigrationStatus.Cancelling;

    /// <summary>Whether the status is final.</summary>
    public static bool IsFinished(this MigrationStatus status) =>
        status is MigrationStatus.Completed or MigrationStatus.Failed or MigrationStatus.Cancelled;
}
