using MiniVmm.Migration.Control;
using MiniVmm.Migration.Report.Model;
using static MiniVmm.Migration.Report.Rendering.ReportFormat;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>The sentence that says when the migration switched over and why, for someone who never read the code.</summary>
internal static class SwitchoverExplanation
{
    /// <summary>The headline: when and why (or why there was no switchover).</summary>
    public static string Headline(MigrationReport report)
    {
        if (report.Switchover is not { } d)
        {
            return report.Summary.Status switch
            {
                "failed" => $"No switchover: the migration failed before it switched over ({report.Summary.ErrorDescription ?? "no reason given"}).",
                "cancelled" => "No switchover: the migration was cancelled first.",
                _ => $"No switchover was recorded (status {report.Summary.Status}).",
            };
        }

        string when = Invariant($"Switched over at {Time(d.TimeMs)}, in pass {d.Pass}: ");
        string why = d.Reason switch
        {
            SwitchoverReason.PendingBelowThreshold => Invariant(
                $"pending {Bytes(d.PendingBytes)} ≤ threshold {Bytes(d.ThresholdBytes)} ({Rate(d.BandwidthBytesPerSecond)} measured bandwidth × {d.DowntimeLimitMs} ms downtime-limit), so what was left fitted in the downtime limit."),
            SwitchoverReason.NothingPending => "nothing was left to send (pending 0 B).",
            SwitchoverReason.IterationStalled => Invariant(
                $"forced — pending {Bytes(d.PendingBytes)} was still above the threshold {Bytes(d.ThresholdBytes)}, but another pass could not make it smaller (what was left only moves with the VM stopped, like a device's stop-copy data)."),
            _ => d.Reason.ToString(),
        };
        return when + why;
    }

    /// <summary>What else shaped the switchover: auto-converge, switchover-ack, and the downtime that followed.</summary>
    public static IReadOnlyList<string> Details(MigrationReport report)
    {
        var details = new List<string>();
        if (report.Switchover is not { } d)
        {
            return details;
        }

        int maxThrottle = report.Samples.Count == 0 ? 0 : report.Samples.Max(s => s.CpuThrottlePercentage);
        if (d.CpuThrottlePercentage > 0)
        {
            details.Add(Invariant($"Auto-converge was throttling the vCPUs to {d.CpuThrottlePercentage} % at that moment: it slowed the guest until the dirty rate fell below the bandwidth."));
        }
        else if (maxThrottle > 0)
        {
            details.Add(Invariant($"Auto-converge throttled the vCPUs (up to {maxThrottle} %) earlier in the migration."));
        }

        if (d.SwitchoverAckRequired)
        {
            details.Add("The source also needed the destination's switchover-ack (its precopy devices had their initial data) and had it.");
        }

        if (report.Summary.DowntimeMs is { } downtime)
        {
            details.Add(Invariant($"The VM was then stopped for {downtime} ms (downtime, shaded in the plots) while the rest went over."));
        }

        return details;
    }
}
