namespace MiniVmm.Migration.Report.Model;

/// <summary>
/// Everything a migration report shows, as data: written as JSON beside the HTML so that the
/// report can be rendered again (<c>minivmm report FILE.json</c>). Times are milliseconds since
/// the migration started.
/// </summary>
/// <param name="FormatVersion">The version of this layout (<see cref="CurrentFormatVersion"/>).</param>
/// <param name="Title">The page's heading.</param>
/// <param name="StartedAt">When the migration started.</param>
/// <param name="Uri">Where it went (the <c>migrate</c> URI), if known.</param>
/// <param name="Settings">The parameters and capabilities it ran with.</param>
/// <param name="Summary">The final <c>query-migrate</c> figures.</param>
/// <param name="Switchover">Why and when it switched over; null when it never did.</param>
/// <param name="Samples">The migration over time, one sample per rate window (about 100 ms).</param>
/// <param name="Passes">One record per pass (dirty-bitmap sync to sync).</param>
/// <param name="Events">Status and run-state changes, phases, throttle changes, VM events, activity notes.</param>
/// <param name="Notes">More rows for the summary table (a demo's checks, say), in order.</param>
/// <param name="DroppedEvents">Events and passes the timeline did not keep (it is bounded).</param>
public sealed record MigrationReport(
    int FormatVersion,
    string Title,
    DateTimeOffset StartedAt,
    string? Uri,
    ReportSettings Settings,
    ReportSummary Summary,
    ReportSwitchover? Switchover,
    IReadOnlyList<ReportSample> Samples,
    IReadOnlyList<ReportPass> Passes,
    IReadOnlyList<ReportEvent> Events,
    IReadOnlyList<ReportNote> Notes,
    long DroppedEvents)
{
    /// <summary>The layout this version writes and reads.</summary>
    public const int CurrentFormatVersion = 1;
}
