using System.Text.Json.Nodes;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Report.Model;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Report;

/// <summary>Builds a <see cref="MigrationReport"/> from an outgoing migration that has finished.</summary>
public static class MigrationReportBuilder
{
    /// <summary>The default heading.</summary>
    public const string DefaultTitle = "MiniVmm migration report";

    /// <summary>
    /// Collects <paramref name="session"/>'s timeline, switchover decision and final
    /// <c>query-migrate</c> figures (its <see cref="MigrationSession.Snapshot"/>, as QMP replies).
    /// </summary>
    /// <param name="session">The migration; finished, or the report shows it as it stands.</param>
    /// <param name="capabilities">The capabilities it ran with.</param>
    /// <param name="uri">Where it went, if known.</param>
    /// <param name="title">The page's heading.</param>
    public static MigrationReport FromSession(
        MigrationSession session, MigrationCapabilities capabilities, string? uri, string title = DefaultTitle)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(capabilities);
        MigrationTimeline timeline = session.Timeline;
        MigrationParameters parameters = session.Parameters;
        return new MigrationReport(
            MigrationReport.CurrentFormatVersion,
            title,
            timeline.StartedAt,
            uri,
            new ReportSettings(parameters.DowntimeLimit, parameters.MaxBandwidth, [.. capabilities.Enabled.Order(StringComparer.Ordinal)]),
            SummaryFrom(session.Snapshot().ToJson()),
            session.SwitchoverDecision is { } decision ? From(decision) : null,
            [.. timeline.Samples.Select(From)],
            [.. timeline.Passes.Select(From)],
            [.. timeline.Events.Select(e => new ReportEvent(e.TimeMs, e.Kind, e.Name, e.Detail))],
            [],
            timeline.DroppedEvents);
    }

    /// <summary>Reads a <c>query-migrate</c> reply into a <see cref="ReportSummary"/>.</summary>
    public static ReportSummary SummaryFrom(JsonObject queryMigrate)
    {
        ArgumentNullException.ThrowIfNull(queryMigrate);
        ReportRamSummary? ram = queryMigrate["ram"] is JsonObject r
            ? new ReportRamSummary(
                Long(r, "transferred"), Long(r, "remaining"), Long(r, "total"), Long(r, "duplicate"), Long(r, "normal"),
                Long(r, "normal-bytes"), Long(r, "dirty-pages-rate"), r["mbps"]?.GetValue<double>() ?? 0, Long(r, "dirty-sync-count"),
                Long(r, "pages-per-second"), Long(r, "precopy-bytes"), Long(r, "downtime-bytes"), Long(r, "page-size"))
            : null;
        return new ReportSummary(
            queryMigrate["status"]?.GetValue<string>() ?? "none",
            OptionalLong(queryMigrate, "total-time"),
            OptionalLong(queryMigrate, "downtime"),
            OptionalLong(queryMigrate, "setup-time"),
            ram,
            queryMigrate["vfio"]?["transferred"]?.GetValue<long>(),
            OptionalLong(queryMigrate, "cpu-throttle-percentage"),
            queryMigrate["error-desc"]?.GetValue<string>());

        static long Long(JsonObject json, string name) => json[name]?.GetValue<long>() ?? 0;
        static long? OptionalLong(JsonObject json, string name) => json[name]?.GetValue<long>();
    }

    private static ReportSwitchover From(MigrationSwitchoverDecision d) => new(
        d.TimeMs, d.Reason, d.Pass, d.PendingBytes, d.ThresholdBytes, d.DowntimeLimitMs, d.BandwidthBytesPerSecond,
        d.CpuThrottlePercentage, d.SwitchoverAckRequired);

    private static ReportSample From(MigrationTimelineSample s) => new(
        s.TimeMs, s.Status.ToQapiName(), s.RunState.ToQapiName(), s.Pass, s.PendingBytes, s.ThresholdBytes, s.DirtyPagesRate,
        s.BandwidthBytesPerSecond, From(s.BytesSent), s.NormalPages, s.ZeroPages, s.CpuThrottlePercentage);

    private static ReportPass From(MigrationPassRecord p) =>
        new(p.Pass, p.StartMs, p.EndMs, From(p.BytesSent), p.PendingBytesAtEnd, p.DirtyPagesRate);

    private static ReportSectionBytes From(SectionBytes b) => new(b.Ram, b.Vfio, b.Harness, b.Other);
}
