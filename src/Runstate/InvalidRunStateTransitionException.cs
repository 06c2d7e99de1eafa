namespace MiniVmm.Runstate;

/// <summary>A run-state change the transition table does not allow (QEMU aborts here).</summary>
public sealed class InvalidRunStateTransitionException(RunState from, RunState to)
    : InvalidOperationException($"invalid runstate transition: '{from.ToQapiName()}' -> '{to.ToQapiName()}'")
{
    /// <summary>The state the VM was in.</summary>
    public RunState From { get; } = from;

    /// <summary>The state that was asked for.</summary>
    public RunState To { get; } = to;
}
