namespace MiniVmm.Migration.Control;

/// <summary>
/// The auto-converge throttle decision (QEMU's <c>mig_throttle_guest_down</c> trigger in
/// <c>migration_trigger_throttle</c>): at a dirty sync that closes a period of at least 1 s,
/// if the guest dirtied more than <see cref="MigrationParameters.ThrottleTriggerThreshold"/>
/// percent of what was sent in that period, for the second time, the vCPU throttle starts at
/// <see cref="MigrationParameters.CpuThrottleInitial"/> or grows by
/// <see cref="MigrationParameters.CpuThrottleIncrement"/>, up to
/// <see cref="MigrationParameters.MaxCpuThrottle"/>. Holds only the period's state; the caller
/// supplies the time, so it needs no clock. One thread at a time.
/// </summary>
public sealed class AutoConvergePolicy
{
    /// <summary>The shortest period a decision covers, in milliseconds.</summary>
    public const long PeriodMilliseconds = 1000;

    private const double PageSize = 4096.0;

    private long _periodStart;
    private long _periodBytes;
    private int _triggers;

    /// <summary>
    /// Called at each dirty sync: decides whether the throttle changes. The first call only
    /// starts a period; a call less than <see cref="PeriodMilliseconds"/> into a period changes nothing.
    /// </summary>
    /// <param name="nowMs">The time, in milliseconds (any fixed origin; never 0 on the first call).</param>
    /// <param name="dirtyPagesRate">The guest's dirty page rate, in pages per second.</param>
    /// <param name="bytesSent">Stream bytes sent so far.</param>
    /// <param name="currentThrottle">The vCPU throttle percentage now in force.</param>
    /// <param name="parameters">The parameters in force.</param>
    /// <returns>The new throttle percentage, or null to leave it as it is.</returns>
    public int? OnSync(long nowMs, long dirtyPagesRate, long bytesSent, int currentThrottle, MigrationParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (_periodStart == 0)
        {
            (_periodStart, _periodBytes) = (nowMs, bytesSent);
            return null;
        }

        if (nowMs - _periodStart < PeriodMilliseconds)
        {
            return null;
        }

        double seconds = (nowMs - _periodStart) / 1000.0;
        double dirtyBytes = dirtyPagesRate * PageSize * seconds;
        double sentBytes = bytesSent - _periodBytes;
        int? next = null;
        if (dirtyBytes > sentBytes * parameters.ThrottleTriggerThreshold / 100.0 && ++_triggers >= 2)
        {
            _triggers = 0;
            next = currentThrottle == 0
                ? (int)parameters.CpuThrottleInitial
                : (int)Math.Min(parameters.MaxCpuThrottle, currentThrottle + parameters.CpuThrottleIncrement);
        }

        (_periodStart, _periodBytes) = (nowMs, bytesSent);
        return next;
    }
}
