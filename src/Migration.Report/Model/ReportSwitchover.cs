using MiniVmm.Migration.Control;

namespace MiniVmm.Migration.Report.Model;

/// <summary>Why and when the migration switched over (the core's <see cref="MigrationSwitchoverDecision"/>).</summary>
/// <param name="TimeMs">When it decided, in ms since the start.</param>
/// <param name="Reason">Why.</param>
/// <param name="Pass">The pass being sent.</param>
/// <param name="PendingBytes">What was left to send.</param>
/// <param name="ThresholdBytes">The threshold pending was held against.</param>
/// <param name="DowntimeLimitMs">The <c>downtime-limit</c> in force.</param>
/// <param name="BandwidthBytesPerSecond">The measured bandwidth the threshold came from.</param>
/// <param name="CpuThrottlePercentage">The auto-converge throttle then (0: none).</param>
/// <param name="SwitchoverAckRequired">Whether it needed the destination's switchover ack.</param>
public sealed record ReportSwitchover(
    long TimeMs,
    SwitchoverReason Reason,
    int Pass,
    long PendingBytes,
    long ThresholdBytes,
    long DowntimeLimitMs,
    double BandwidthBytesPerSecond,
    int CpuThrottlePercentage,
    bool SwitchoverAckRequired);
