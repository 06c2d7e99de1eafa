namespace MiniVmm.Host.Hosting;

/// <summary>Why the process shuts down; the SHUTDOWN event's <c>reason</c>.</summary>
public enum ShutdownCause
{
    /// <summary><c>host-qmp-quit</c>: QMP <c>quit</c>.</summary>
    HostQmpQuit,

    /// <summary><c>host-signal</c>: SIGTERM, SIGINT or SIGHUP.</summary>
    HostSignal,

    /// <summary>An incoming migration failed: QEMU 7.2 exits with status 1 (no SHUTDOWN reason of its own; reported as host-error).</summary>
    IncomingMigrationFailed,
}

/// <summary>QAPI names of <see cref="ShutdownCause"/>.</summary>
public static class ShutdownCauseNames
{
    /// <summary>The name the SHUTDOWN event reports as <c>reason</c>.</summary>
    public static string ToQapiName(this ShutdownCause cause) => cause switch
    {
        ShutdownCause.HostQmpQuit => "host-qmp-quit",
        ShutdownCause.HostSignal => "host-signal",
        ShutdownCause.IncomingMigrationFailed => "host-error",
        _ => throw new ArgumentOutOfRangeException(nameof(cause), cause, "not a shutdown cause"),
    };
}
