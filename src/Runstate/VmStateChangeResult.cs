namespace MiniVmm.Runstate;

/// <summary>
/// What a VM start or stop did: whether the run state changed and which handlers failed.
/// Every handler runs even when an earlier one failed; the caller decides what a failure means
/// (a migration fails cleanly instead of going on with a device in an unknown state).
/// </summary>
public sealed record VmStateChangeResult(bool Changed, IReadOnlyList<VmStateChangeFailure> Failures)
{
    /// <summary>Nothing happened: the VM already was in the asked-for condition.</summary>
    public static VmStateChangeResult Unchanged { get; } = new(false, []);

    /// <summary>True when no handler failed.</summary>
    public bool Succeeded => Failures.Count == 0;

    /// <summary>Throws a <see cref="VmStateChangeException"/> carrying every failure, if there was one.</summary>
    public void ThrowIfFailed()
    {
        if (!Succeeded)
        {
            throw new VmStateChangeException(Failures);
        }
    }
}
