using System.Collections.Frozen;

namespace MiniVmm.Runstate;

/// <summary>
/// The transitions between run states that QEMU allows (<c>runstate_transitions_def</c>).
/// <see cref="Qemu72"/> is QEMU 7.2's table; <see cref="Master"/> adds the edges later QEMU
/// releases introduced (suspended handling in 9.0, restoring the previous state after a failed
/// migration in 8.1). A transition to the same state is always allowed and does nothing.
/// </summary>
public sealed class RunStateTransitionTable
{
    private readonly FrozenSet<(RunState From, RunState To)> _edges;

    private RunStateTransitionTable(string name, IEnumerable<(RunState, RunState)> edges)
    {
        Name = name;
        _edges = edges.ToFrozenSet();
    }

    /// <summary>A short name of the table, e.g. <c>qemu-7.2</c>.</summary>
    public string Name { get; }

    /// <summary>Every allowed (from, to) pair; same-state pairs are not listed.</summary>
    public IReadOnlySet<(RunState From, RunState To)> Edges => _edges;

    /// <summary>QEMU 7.2's table.</summary>
    public static RunStateTransitionTable Qemu72 { get; } = new("qemu-7.2", Qemu72Edges());

    /// <summary>QEMU master's table: 7.2's plus the edges added since.</summary>
    public static RunStateTransitionTable Master { get; } =
        new("qemu-master", Qemu72Edges().Concat(MasterExtraEdges()));

    /// <summary>Whether moving from <paramref name="from"/> to <paramref name="to"/> is allowed.</summary>
    public bool Allows(RunState from, RunState to) => from == to || _edges.Contains((from, to));

    /// <summary>Throws <see cref="InvalidRunStateTransitionException"/> unless the move is allowed.</summary>
    public void Check(RunState from, RunState to)
    {
        if (!Allows(from, to))
        {
            throw new InvalidRunStateTransitionException(from, to);
        }
    }

    private static IEnumerable<(RunState, RunState)> Qemu72Edges()
    {
        return Expand(
        [
            (RunState.Prelaunch, [RunState.InMigrate, RunState.Running, RunState.FinishMigrate]),
            (RunState.Debug, [RunState.Running, RunState.FinishMigrate, RunState.Prelaunch, RunState.Suspended]),
            (RunState.InMigrate,
            [
                RunState.InternalError, RunState.IoError, RunState.Paused, RunState.Running, RunState.Shutdown,
                RunState.Suspended, RunState.Watchdog, RunState.GuestPanicked, RunState.FinishMigrate,
                RunState.Prelaunch, RunState.PostMigrate, RunState.Colo,
            ]),
            (RunState.InternalError, [RunState.Paused, RunState.FinishMigrate, RunState.Prelaunch]),
            (RunState.IoError, [RunState.Running, RunState.FinishMigrate, RunState.Prelaunch]),
            (RunState.Paused, [RunState.Running, RunState.FinishMigrate, RunState.PostMigrate, RunState.Prelaunch, RunState.Colo]),
            (RunState.PostMigrate, [RunState.Running, RunState.FinishMigrate, RunState.Prelaunch]),
            (RunState.FinishMigrate, [RunState.Running, RunState.Paused, RunState.PostMigrate, RunState.Prelaunch, RunState.Colo]),
            (RunState.RestoreVm, [RunState.Running, RunState.Prelaunch]),
            (RunState.Colo, [RunState.Running, RunState.Prelaunch, RunState.Shutdown]),
            (RunState.Running,
            [
                RunState.Debug, RunState.InternalError, RunState.IoError, RunState.Paused, RunState.FinishMigrate,
                RunState.RestoreVm, RunState.SaveVm, RunState.Shutdown, RunState.Watchdog, RunState.GuestPanicked,
                RunState.Colo, RunState.Suspended,
            ]),
            (RunState.SaveVm, [RunState.Running]),
            (RunState.Shutdown, [RunState.Paused, RunState.FinishMigrate, RunState.Prelaunch, RunState.Colo]),
            (RunState.Suspended, [RunState.Running, RunState.FinishMigrate, RunState.Prelaunch, RunState.Colo]),
            (RunState.Watchdog, [RunState.Running, RunState.FinishMigrate, RunState.Prelaunch, RunState.Colo]),
            (RunState.GuestPanicked, [RunState.Running, RunState.FinishMigrate, RunState.Prelaunch]),
        ]);
    }

    private static IEnumerable<(RunState, RunState)> MasterExtraEdges()
    {
        return Expand(
        [
            (RunState.Paused, [RunState.Suspended]),
            (RunState.Prelaunch, [RunState.Suspended]),
            (RunState.FinishMigrate,
            [
                RunState.InternalError, RunState.IoError, RunState.Shutdown, RunState.Suspended,
                RunState.Watchdog, RunState.GuestPanicked,
            ]),
            (RunState.RestoreVm, [RunState.Suspended]),
            (RunState.SaveVm, [RunState.Suspended]),
            (RunState.Suspended, [RunState.Paused, RunState.SaveVm, RunState.RestoreVm, RunState.Shutdown]),
        ]);
    }

    private static IEnumerable<(RunState, RunState)> Expand((RunState From, RunState[] To)[] rows) =>
        rows.SelectMany(row => row.To.Select(to => (row.From, to)));
}
