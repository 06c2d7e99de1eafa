namespace MiniVmm.Migration.Control;

/// <summary>
/// The moment an outgoing migration decided to switch over, and the figures it decided on:
/// taken by the migration thread right before it stops the VM.
/// </summary>
/// <param name="TimeMs">When, in milliseconds since the migration started.</param>
/// <param name="Reason">Why it switched over.</param>
/// <param name="Pass">The pass that was being sent (the dirty-sync count).</param>
/// <param name="PendingBytes">What was still to send (bytes).</param>
/// <param name="ThresholdBytes">The switchover threshold: the bandwidth times the downtime limit (bytes).</param>
/// <param name="DowntimeLimitMs">The <c>downtime-limit</c> in force.</param>
/// <param name="BandwidthBytesPerSecond">The bandwidth measured over the last rate window.</param>
/// <param name="CpuThrottlePercentage">The auto-converge vCPU throttle at that moment (0: none).</param>
/// <param name="SwitchoverAckRequired">Whether the switchover waited for the destination's ack (<c>switchover-ack</c> with a running VM).</param>
public sealed record MigrationSwitchoverDecision(
    long TimeMs,
    SwitchoverReason Reason,
    int Pass,
    long PendingBytes,
    long ThresholdBytes,
    long DowntimeLimitMs,
    double BandwidthBytesPerSecond,
    int CpuThrottlePercentage,
    bool SwitchoverAckRequired);
