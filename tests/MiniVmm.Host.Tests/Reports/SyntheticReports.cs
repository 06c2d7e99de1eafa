using MiniVmm.Migration.Control;
using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Host.Tests.Reports;

/// <summary>
/// Reports made up for the renderer's and the JSON's tests: a migration of <c>passes</c> passes
/// whose last ones come every few milliseconds (as near convergence), with two VFIO devices, a
/// guest harness's PAUSE/RUN notes and, optionally, auto-converge and a dirty rate of 0.
/// </summary>
internal static class SyntheticReports
{
    public const long Threshold = 9_856_000;       // 9.4 MiB
    public const long PendingAtSwitchover = 3_250_000; // 3.1 MiB

    public static MigrationReport Make(int passes = 300, bool dirtyRate = true, int throttle = 0)
    {
        var samples = new List<ReportSample>();
        var passRecords = new List<ReportPass>();
        var events = new List<ReportEvent>
        {
            new(0, MigrationTimelineEventKind.Status, "setup", null),
            new(0, MigrationTimelineEventKind.RunState, "running", null),
            new(0, MigrationTimelineEventKind.Phase, "setup", null),
            new(5, MigrationTimelineEventKind.VmEvent, "VFIO_MIGRATION", """{"device-id":"gpu0","qom-path":"/machine/peripheral/gpu0","device-state":"pre-copy"}"""),
            new(5, MigrationTimelineEventKind.VmEvent, "VFIO_MIGRATION", """{"device-id":"nic0","qom-path":"/machine/peripheral/nic0","device-state":"pre-copy"}"""),
            new(40, MigrationTimelineEventKind.Status, "active", null),
        };
        long ram = 0;
        long t = 40;
        for (int i = 1; i <= passes; i++)
        {
            long length = i <= 5 ? 200 : 2;  // then many tiny passes near convergence
            long bytes = i <= 5 ? 100L << 20 >> (i - 1) : 4096;
            passRecords.Add(new ReportPass(i, t, t + length, new ReportSectionBytes(bytes, i <= 5 ? 1 << 20 : 0, 512, 64), 4L << 20, dirtyRate ? 5000 : 0));
            ram += bytes;
            t += length;
            if (i <= 5 || i % 50 == 0)
            {
                samples.Add(new ReportSample(
                    t, "active", "running", i, Math.Max(PendingAtSwitchover, 600L << 20 >> i), Threshold,
                    dirtyRate ? 5000 : 0, 31.3 * (1 << 20), new ReportSectionBytes(ram, 4L << 20, 512L * i, 4096), ram / 4096, 10, i > 3 ? throttle : 0));
            }
        }

        long switchover = t;
        events.AddRange(
        [
            new(switchover, MigrationTimelineEventKind.Phase, "switchover", null),
            new(switchover, MigrationTimelineEventKind.Phase, "stop", null),
            new(switchover + 1, MigrationTimelineEventKind.Activity, "harness PAUSE", "ok after 1.2 ms (finish-migrate)"),
            new(switchover + 1, MigrationTimelineEventKind.RunState, "finish-migrate", null),
            new(switchover + 2, MigrationTimelineEventKind.VmEvent, "VFIO_MIGRATION", """{"device-id":"gpu0","qom-path":"/machine/peripheral/gpu0","device-state":"stop-copy"}"""),
            new(switchover + 2, MigrationTimelineEventKind.Phase, "device_state", null),
            new(switchover + 60, MigrationTimelineEventKind.Phase, "complete", null),
            new(switchover + 70, MigrationTimelineEventKind.Status, "completed", null),
            new(switchover + 71, MigrationTimelineEventKind.Phase, "cleanup", null),
            new(switchover + 72, MigrationTimelineEventKind.RunState, "postmigrate", null),
        ]);
        events.Insert(3, new ReportEvent(1, MigrationTimelineEventKind.Activity, "harness RUN", "ok after 0.4 ms (running)"));
        samples.Add(new ReportSample(switchover + 72, "completed", "postmigrate", passes, 0, Threshold, 0, 31.3 * (1 << 20),
            new ReportSectionBytes(ram + PendingAtSwitchover, 5L << 20, 512L * passes, 8192), ram / 4096, 10, 0));
        return new MigrationReport(
            MigrationReport.CurrentFormatVersion,
            "synthetic",
            new DateTimeOffset(2026, 12, 5, 6, 0, 0, TimeSpan.Zero),
            "tcp:127.0.0.1:4444",
            new ReportSettings(300, 0, throttle > 0 ? ["auto-converge", "events"] : ["events"]),
            new ReportSummary("completed", switchover + 72, 70, 40,
                new ReportRamSummary(ram + PendingAtSwitchover, 0, 64L << 20, 10, ram / 4096, ram, 0, 1234.567, passes, 8000, ram, PendingAtSwitchover, 4096),
                5L << 20, null, null),
            new ReportSwitchover(switchover, SwitchoverReason.PendingBelowThreshold, passes, PendingAtSwitchover, Threshold, 300, 31.3 * (1 << 20), throttle, true),
            samples,
            passRecords,
            events,
            [new ReportNote("memory check", "consistent", true)],
            0);
    }
}
