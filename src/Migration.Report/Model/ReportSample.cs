namespace MiniVmm.Migration.Report.Model;

/// <summary>The migration as it stood at one moment (a timeline sample).</summary>
/// <param name="TimeMs">Milliseconds since the start.</param>
/// <param name="Status">The migration's status (QAPI name).</param>
/// <param name="RunState">The source VM's run state (QAPI name).</param>
/// <param name="Pass">The pass being sent.</param>
/// <param name="PendingBytes">What was left to send.</param>
/// <param name="ThresholdBytes">The switchover threshold.</param>
/// <param name="DirtyPagesRate">Pages per second the guest dirtied.</param>
/// <param name="BandwidthBytesPerSecond">The bandwidth over the last rate window.</param>
/// <param name="BytesSent">Stream bytes so far by section kind.</param>
/// <param name="NormalPages">RAM pages sent with data so far.</param>
/// <param name="ZeroPages">RAM pages sent as zero pages so far.</param>
/// <param name="CpuThrottlePercentage">The auto-converge throttle.</param>
public sealed record ReportSample(
    long TimeMs,
    string Status,
    string RunState,
    int Pass,
    long PendingBytes,
    long ThresholdBytes,
    long DirtyPagesRate,
    double BandwidthBytesPerSecond,
    ReportSectionBytes BytesSent,
    long NormalPages,
    long ZeroPages,
    int CpuThrottlePercentage);
