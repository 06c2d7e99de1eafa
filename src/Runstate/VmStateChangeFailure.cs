namespace MiniVmm.Runstate;

/// <summary>Which pass of a VM state change a handler failed in.</summary>
public enum VmStateChangePhase
{
    /// <summary>The prepare pass, which runs every prepare callback before any main callback.</summary>
    Prepare,

    /// <summary>The main pass.</summary>
    Change,
}

/// <summary>One handler's failure during a VM state change.</summary>
public sealed record VmStateChangeFailure(string Handler, VmStateChangePhase Phase, Exception Error)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Handler} ({(Phase == VmStateChangePhase.Prepare ? "prepare" : "change")}): {Error.Message}";
}
