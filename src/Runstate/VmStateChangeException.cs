namespace MiniVmm.Runstate;

/// <summary>One or more VM change-state handlers failed during a start or stop.</summary>
public sealed class VmStateChangeException(IReadOnlyList<VmStateChangeFailure> failures)
    : AggregateException(
        $"{failures.Count} VM state change handler(s) failed: {string.Join("; ", failures)}",
        failures.Select(f => f.Error))
{
    /// <summary>Each failing handler with its phase and error.</summary>
    public IReadOnlyList<VmStateChangeFailure> Failures { get; } = failures;
}
