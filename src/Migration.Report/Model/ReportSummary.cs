namespace MiniVmm.Migration.Report.Model;

/// <summary>
/// The final <c>query-migrate</c> reply, member for member (the same numbers a QMP client sees);
/// members <c>query-migrate</c> left out are null.
/// </summary>
/// <param name="Status">The migration's status (<c>completed</c>, <c>failed</c>, ...).</param>
/// <param name="TotalTimeMs"><c>total-time</c>.</param>
/// <param name="DowntimeMs"><c>downtime</c>.</param>
/// <param name="SetupTimeMs"><c>setup-time</c>.</param>
/// <param name="Ram"><c>ram</c>, when the VM has RAM.</param>
/// <param name="VfioTransferred"><c>vfio.transferred</c>, when the VM has VFIO devices.</param>
/// <param name="CpuThrottlePercentage"><c>cpu-throttle-percentage</c>.</param>
/// <param name="ErrorDescription"><c>error-desc</c>.</param>
public sealed record ReportSummary(
    string Status,
    long? TotalTimeMs,
    long? DowntimeMs,
    long? SetupTimeMs,
    ReportRamSummary? Ram,
    long? VfioTransferred,
    long? CpuThrottlePercentage,
    string? ErrorDescription);

/// <summary><c>query-migrate</c>'s <c>ram</c> member.</summary>
/// <param name="Transferred"><c>transferred</c> (bytes).</param>
/// <param name="Remaining"><c>remaining</c> (bytes).</param>
/// <param name="Total"><c>total</c> (bytes).</param>
/// <param name="Duplicate"><c>duplicate</c>: zero pages.</param>
/// <param name="Normal"><c>normal</c>: pages sent with their data.</param>
/// <param name="NormalBytes"><c>normal-bytes</c>.</param>
/// <param name="DirtyPagesRate"><c>dirty-pages-rate</c> (pages per second).</param>
/// <param name="Mbps"><c>mbps</c>.</param>
/// <param name="DirtySyncCount"><c>dirty-sync-count</c>: the passes.</param>
/// <param name="PagesPerSecond"><c>pages-per-second</c>.</param>
/// <param name="PrecopyBytes"><c>precopy-bytes</c>.</param>
/// <param name="DowntimeBytes"><c>downtime-bytes</c>.</param>
/// <param name="PageSize"><c>page-size</c>.</param>
public sealed record ReportRamSummary(
    long Transferred,
    long Remaining,
    long Total,
    long Duplicate,
    long Normal,
    long NormalBytes,
    long DirtyPagesRate,
    double Mbps,
    long DirtySyncCount,
    long PagesPerSecond,
    long PrecopyBytes,
    long DowntimeBytes,
    long PageSize);
