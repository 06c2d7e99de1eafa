using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MiniVmm.Runstate;

/// <summary>
/// A VM's run state and its control: QEMU's <c>runstate_set</c>, <c>vm_start</c>,
/// <c>vm_stop</c> and <c>vm_stop_force_state</c>, the change-state handlers they notify, the
/// events they emit and the big lock they need. Suspended counts as live, as in QEMU master:
/// stopping a suspended VM notifies the handlers and starting it again resumes into suspended.
/// </summary>
public sealed partial class VirtualMachine
{
    private readonly ILogger _logger;
    private volatile RunState _state;
    private bool _wasSuspended;
    private int _cpuThrottle;

    /// <summary>Creates a VM in <paramref name="initial"/> (QEMU starts in <c>prelaunch</c>).</summary>
    public VirtualMachine(
        TimeProvider? time = null,
        RunState initial = RunState.Prelaunch,
        RunStateTransitionTable? transitions = null,
        ILogger<VirtualMachine>? logger = null)
    {
        Time = time ?? TimeProvider.System;
        Transitions = transitions ?? RunStateTransitionTable.Master;
        Events = new VmEventBus(Time);
        _state = initial;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    /// <summary>The VM's big lock (QEMU's BQL).</summary>
    public BigLock Bql { get; } = new();

    /// <summary>The clock every timestamp of this VM comes from.</summary>
    public TimeProvider Time { get; }

    /// <summary>The transitions this VM allows.</summary>
    public RunStateTransitionTable Transitions { get; }

    /// <summary>The handlers notified on start and stop.</summary>
    public VmStateChangeHandlers StateChangeHandlers { get; } = new();

    /// <summary>What is asked before every start; any of them may refuse it.</summary>
    public VmStartChecks StartChecks { get; } = new();

    /// <summary>Where STOP, RESUME and the other events of this VM go.</summary>
    public VmEventBus Events { get; }

    /// <summary>The current run state; readable without the lock.</summary>
    public RunState State => _state;

    /// <summary>Whether the guest runs (<c>runstate_is_running</c>).</summary>
    public bool IsRunning => _state == RunState.Running;

    /// <summary>Running or suspended (<c>runstate_is_live</c>).</summary>
    public bool IsLive => _state is RunState.Running or RunState.Suspended;

    /// <summary>Whether the VM must be reset before it can run again (internal-error or shutdown).</summary>
    public bool NeedsReset => _state is RunState.InternalError or RunState.Shutdown;

    /// <summary>
    /// Whether the VM starts by itself once it can: false with <c>-S</c>. An incoming migration
    /// starts the VM after loading only when this is set; QMP <c>cont</c> and <c>stop</c> during
    /// <c>inmigrate</c> set and clear it.
    /// </summary>
    public bool Autostart { get; set; } = true;

    /// <summary>
    /// The share of time every vCPU must sleep, in percent (0 = not throttled, at most 99):
    /// QEMU's <c>cpu_throttle_set</c>, driven by auto-converge. vCPU threads read it as they run.
    /// </summary>
    public int CpuThrottlePercentage
    {
        get => Volatile.Read(ref _cpuThrottle);
        set
        {
            int clamped = Math.Clamp(value, 0, 99);
            if (Interlocked.Exchange(ref _cpuThrottle, clamped) != clamped)
            {
                CpuThrottleChanged?.Invoke(clamped);
            }
        }
    }

    /// <summary>
    /// Raised after <see cref="CpuThrottlePercentage"/> changed, on the thread that changed it
    /// (the migration thread, with or without the big lock): vCPUs that live in another process
    /// hear of the throttle through it. Handlers must not block.
    /// </summary>
    public event Action<int>? CpuThrottleChanged;

    /// <summary>
    /// Moves to <paramref name="state"/> without notifying anyone (<c>runstate_set</c>). The same
    /// state does nothing; a transition the table forbids throws
    /// <see cref="InvalidRunStateTransitionException"/> naming both states. Big lock held.
    /// </summary>
    public void SetRunState(RunState state)
    {
        Bql.AssertHeld();
        RunState old = _state;
        if (old == state)
        {
            return;
        }

        Transitions.Check(old, state);
        _state = state;
        LogTransition(old.ToQapiName(), state.ToQapiName());
    }

    /// <summary>
    /// Starts the VM (<c>vm_start</c>): if it is not already running, asks the
    /// <see cref="StartChecks"/> (a refusal changes nothing and is returned as
    /// <see cref="VmStateChangeResult.Refusal"/>), emits <c>RESUME</c>, enters <c>running</c> (or
    /// <c>suspended</c> if it was suspended when stopped), then notifies the handlers. Big lock held.
    /// </summary>
    public VmStateChangeResult Start()
    {
        Bql.AssertHeld();
        if (IsRunning)
        {
            return VmStateChangeResult.Unchanged;
        }

        RunState target = _wasSuspended ? RunState.Suspended : RunState.Running;
        Transitions.Check(_state, target);
        if (StartChecks.FirstRefusal() is { } refusal)
        {
            LogStartRefused(refusal);
            return new VmStateChangeResult(false, [], refusal);
        }

        Events.Emit("RESUME");
        SetRunState(target);
        _wasSuspended = false;
        return Notify(running: true, target);
    }

    /// <summary>
    /// Stops the VM (<c>vm_stop</c>): if it is live, enters <paramref name="state"/>, notifies
    /// the handlers and emits <c>STOP</c>; otherwise does nothing. Big lock held.
    /// </summary>
    public VmStateChangeResult Stop(RunState state)
    {
        Bql.AssertHeld();
        if (!IsLive)
        {
            return VmStateChangeResult.Unchanged;
        }

        bool wasSuspended = _state == RunState.Suspended;
        SetRunState(state);
        _wasSuspended = wasSuspended;
        VmStateChangeResult result = Notify(running: false, state);
        Events.Emit("STOP");
        return result;
    }

    /// <summary>
    /// Stops the VM into <paramref name="state"/> whatever it was doing
    /// (<c>vm_stop_force_state</c>): a live VM stops as with <see cref="Stop"/>; a stopped VM
    /// just changes run state, with no handlers and no event. Big lock held.
    /// </summary>
    public VmStateChangeResult StopForceState(RunState state)
    {
        Bql.AssertHeld();
        if (IsLive)
        {
            return Stop(state);
        }

        bool changed = _state != state;
        SetRunState(state);
        return changed ? new VmStateChangeResult(true, []) : VmStateChangeResult.Unchanged;
    }

    private VmStateChangeResult Notify(bool running, RunState state)
    {
        IReadOnlyList<VmStateChangeFailure> failures = StateChangeHandlers.Notify(running, state);
        foreach (VmStateChangeFailure failure in failures)
        {
            LogHandlerFailed(failure.Error, failure.Handler, failure.Phase, state.ToQapiName());
        }

        return new VmStateChangeResult(true, failures);
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Debug, Message = "run state {From} -> {To}")]
    private partial void LogTransition(string from, string to);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "VM start refused: {Reason}")]
    private partial void LogStartRefused(string reason);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning,
        Message = "VM change-state handler {Handler} failed in the {Phase} pass entering {State}")]
    private partial void LogHandlerFailed(Exception error, string handler, VmStateChangePhase phase, string state);
}
