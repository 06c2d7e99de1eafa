namespace MiniVmm.Migration.VMState;

/// <summary>
/// A subsection as its parent holds it: the description and the predicate deciding whether
/// it is sent (null: always).
/// </summary>
internal sealed record VMStateSubsection<T>(VMStateDescription<T> Description, Func<T, bool>? Needed)
    where T : class
{
    public bool IsNeeded(T state) => Needed is null || Needed(state);
}
