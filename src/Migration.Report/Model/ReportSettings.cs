namespace MiniVmm.Migration.Report.Model;

/// <summary>What the migration ran with.</summary>
/// <param name="DowntimeLimitMs">The <c>downtime-limit</c> parameter.</param>
/// <param name="MaxBandwidth">The <c>max-bandwidth</c> parameter, bytes per second (0: unlimited).</param>
/// <param name="Capabilities">The capabilities that were on, by QAPI name.</param>
public sealed record ReportSettings(long DowntimeLimitMs, long MaxBandwidth, IReadOnlyList<string> Capabilities);
