namespace MiniVmm.Migration.Control;

/// <summary>
/// What the RAM handler has sent so far in the current migration, as <c>query-migrate</c>'s
/// <c>ram</c> member reports it, and <see cref="PagesDirtied"/>: the pages dirty syncs found newly
/// dirty since setup (what the auto-converge decision measures the guest by). An immutable snapshot.
/// </summary>
public sealed record RamTransferStats(
    long Transferred,
    long Remaining,
    long Total,
    long Duplicate,
    long Normal,
    long NormalBytes,
    long DirtyPagesRate,
    long DirtySyncCount,
    long PrecopyBytes,
    long DowntimeBytes,
    long PageSize = 4096,
    long PagesDirtied = 0,
    long MultifdBytes = 0)
{
    /// <summary>No RAM, nothing sent.</summary>
    public static RamTransferStats Empty { get; } = new(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

/// <summary>Where a migration session reads RAM statistics from (the RAM handler).</summary>
public interface IRamTransferStatistics
{
    /// <summary>The current figures.</summary>
    RamTransferStats Snapshot();
}
