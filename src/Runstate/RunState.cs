namespace MiniVmm.Runstate;

/// <summary>
/// The run states of a VM, one for each of QEMU's <c>RunState</c> values. The QAPI spelling
/// (what QMP's <c>query-status</c> reports) comes from <see cref="RunStateNames.ToQapiName"/>.
/// </summary>
public enum RunState
{
    /// <summary><c>debug</c>: stopped by a debugger.</summary>
    Debug,
    /// <summary><c>inmigrate</c>: waiting for or loading an incoming migration.</summary>
    InMigrate,
    /// <summary><c>internal-error</c>: stopped by an emulation failure; needs a reset.</summary>
    InternalError,
    /// <summary><c>io-error</c>: stopped by a block I/O error.</summary>
    IoError,
    /// <summary><c>paused</c>: stopped by the user (QMP <c>stop</c>).</summary>
    Paused,
    /// <summary><c>postmigrate</c>: the source after a completed outgoing migration.</summary>
    PostMigrate,
    /// <summary><c>prelaunch</c>: created but never started (<c>-S</c>).</summary>
    Prelaunch,
    /// <summary><c>finish-migrate</c>: stopped for the final phase of a migration.</summary>
    FinishMigrate,
    /// <summary><c>restore-vm</c>: loading a snapshot.</summary>
    RestoreVm,
    /// <summary><c>running</c>: the guest runs.</summary>
    Running,
    /// <summary><c>save-vm</c>: saving a snapshot.</summary>
    SaveVm,
    /// <summary><c>shutdown</c>: the guest shut down; needs a reset.</summary>
    Shutdown,
    /// <summary><c>suspended</c>: the guest is suspended to RAM.</summary>
    Suspended,
    /// <summary><c>watchdog</c>: stopped by a watchdog action.</summary>
    Watchdog,
    /// <summary><c>guest-panicked</c>: the guest reported a panic.</summary>
    GuestPanicked,
    /// <summary><c>colo</c>: COLO fault-tolerance mode.</summary>
    Colo,
}

/// <summary>QAPI names of <see cref="RunState"/> values.</summary>
public static class RunStateNames
{
    private static readonly string[] Names =
    [
        "debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate", "prelaunch",
        "finish-migrate", "restore-vm", "running", "save-vm", "shutdown", "suspended", "watchdog",
        "guest-panicked", "colo",
    ];

    /// <summary>Every run state, in declaration order.</summary>
    public static IReadOnlyList<RunState> All { get; } = Enum.GetValues<RunState>();

    /// <summary>The QAPI spelling of <paramref name="state"/>, e.g. <c>finish-migrate</c>.</summary>
    public static string ToQapiName(this RunState state) =>
        (uint)state < (uint)Names.Length
            ? Names[(int)state]
            : throw new ArgumentOutOfRangeException(nameof(state), state, "not a run state");

    /// <summary>Parses a QAPI run-state name.</summary>
    public static bool TryParse(string qapiName, out RunState state)
    {
        int index = Array.IndexOf(Names, qapiName);
        state = index < 0 ? default : (RunState)index;
        return index >= 0;
    }

    /// <summary>Parses a QAPI run-state name or throws an <see cref="ArgumentException"/> naming it.</summary>
    public static RunState Parse(string qapiName) =>
        TryParse(qapiName, out RunState state)
            ? state
            : throw new ArgumentException($"'{qapiName}' is not a run state", nameof(qapiName));
}
