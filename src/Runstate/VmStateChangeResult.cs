namespace MiniVmm.Runstate;

/// <summary>
/// What a VM start or stop did: whether the run state changed and which handlers failed.
/// Every handler runs even when an earlier one failed; the caller decides what a failure means
/// (a migration fails cleanly instead of going on with a device in an unknown state).
/// </summary>
/// <param name="Changed">Whether the run state changed.</param>
/// <param name="Failures">The handlers that failed.</param>
/// <param name="Refusal">Why a start was refused before anything changed (a <see cref="VmStartCheck"/> said no).</param>
public sealed record VmStateChangeResult(
    bool Changed, IReadOnlyList<VmStateChangeFailure> Failures, string? Refusal = null)
{
    /// <summary>Nothing happened: the VM already was in the asked-for condition.</summary>
    public static VmStateChangeResult Unchanged { get; } = new(false, []);

    /// <summary>True when no handler failed.</summary>
    public bool Succeeded => Failures.Count == 0 && Refusal is null;

    /// <summary>
    /// Throws a <see cref="VmStartRefusedException"/> for a refused start, or a
    /// <see cref="VmStateChangeException"/> carrying every failure, if there was one.
    /// </summary>
    public void ThrowIfFailed()
    {
        if (Refusal is { } refusal)
        {
            throw new VmStartRefusedException(refusal);
        }

        if (Failures.Count != 0)
        {
            throw new VmStateChangeException(Failures);
        }
    }
}
