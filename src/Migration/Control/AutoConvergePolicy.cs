namespace MiniVmm.Migration.Control;

/// <summary>
/// The auto-converge throttle decision, taken at each dirty sync that closes a period of at least
/// <see cref="PeriodMilliseconds"/> (<see cref="ComputedPeriodMilliseconds"/> with the computed
/// rule): the guest dirtied "too much" in the period when the bytes it
/// dirtied exceed <see cref="MigrationParameters.ThrottleTriggerThreshold"/> percent of the bytes
/// sent in it. What follows depends on <see cref="MigrationParameters.XThrottleComputed"/>:
/// <list type="bullet">
/// <item><b>QEMU's step rule</b> (off): the second such period starts the vCPU throttle at
/// <see cref="MigrationParameters.CpuThrottleInitial"/> or adds
/// <see cref="MigrationParameters.CpuThrottleIncrement"/>. A sync comes once per pass over the
/// pending RAM, so a guest that outruns the link by far needs dozens of passes (minutes on a slow
/// link) before the throttle bites.</item>
/// <item><b>Computed</b> (on, MiniVmm's default): the first such period sets the throttle at once
/// to the level at which the guest, at the dirty rate just measured and scaled by the share of CPU
/// it would keep, dirties half the trigger share of the measured bandwidth, so each following pass
/// is about a quarter of the one before; never less than the step rule would give. One or two
/// syncs reach the needed level.</item>
/// </list>
/// With <see cref="MigrationParameters.CpuThrottleTailslow"/> an active throttle grows by
/// QEMU's tail-slow rule instead: the share of CPU that would bring the dirtied bytes down to the
/// trigger level, but no more than the increment per decision. Never above
/// <see cref="MigrationParameters.MaxCpuThrottle"/>, never lowered during a migration.
/// Holds only the period's state; the caller supplies the time, so it needs no clock. One thread
/// at a time (the migration thread).
/// </summary>
public sealed class AutoConvergePolicy
{
    /// <summary>The shortest period a decision covers, in milliseconds (QEMU's).</summary>
    public const long PeriodMilliseconds = 1000;

    /// <summary>
    /// The shortest period with the computed rule: it measures the pages the syncs found dirty in
    /// the period itself, not a once-a-second rate, so half a second tells enough.
    /// </summary>
    public const long ComputedPeriodMilliseconds = 500;

    private const double PageSize = 4096.0;

    private long _periodStart;
    private long _periodBytes;
    private long _periodPages;
    private int _triggers;

    /// <summary>
    /// Called at each dirty sync: decides whether the throttle changes. The first call only
    /// starts a period; a call less than <see cref="PeriodMilliseconds"/> into a period changes nothing.
    /// </summary>
    /// <param name="nowMs">The time, in milliseconds (any fixed origin; never 0 on the first call).</param>
    /// <param name="pagesDirtied">Pages the dirty syncs have found newly dirty so far (<see cref="RamTransferStats.PagesDirtied"/>).</param>
    /// <param name="bytesSent">Stream bytes sent so far.</param>
    /// <param name="currentThrottle">The vCPU throttle percentage now in force.</param>
    /// <param name="parameters">The parameters in force.</param>
    /// <returns>The new throttle percentage, or null to leave it as it is.</returns>
    public int? OnSync(long nowMs, long pagesDirtied, long bytesSent, int currentThrottle, MigrationParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (_periodStart == 0)
        {
            (_periodStart, _periodBytes, _periodPages) = (nowMs, bytesSent, pagesDirtied);
            return null;
        }

        long period = parameters.XThrottleComputed ? ComputedPeriodMilliseconds : PeriodMilliseconds;
        if (nowMs - _periodStart < period)
        {
            return null;
        }

        double dirtyBytes = (pagesDirtied - _periodPages) * PageSize;
        double triggerBytes = (bytesSent - _periodBytes) * parameters.ThrottleTriggerThreshold / 100.0;
        int? next = null;
        if (dirtyBytes > triggerBytes && (parameters.XThrottleComputed || ++_triggers >= 2))
        {
            _triggers = 0;
            next = Next(currentThrottle, dirtyBytes, triggerBytes, parameters);
        }

        (_periodStart, _periodBytes, _periodPages) = (nowMs, bytesSent, pagesDirtied);
        return next == currentThrottle ? null : next;
    }

    /// <summary>The throttle after a period in which <paramref name="dirtyBytes"/> exceeded <paramref name="triggerBytes"/>.</summary>
    private static int Next(int current, double dirtyBytes, double triggerBytes, MigrationParameters parameters)
    {
        int max = (int)parameters.MaxCpuThrottle;
        double cpuNow = 100 - current;
        if (current > 0 && parameters.CpuThrottleTailslow)
        {
            double ideal = Math.Floor(cpuNow * triggerBytes / dirtyBytes);
            int increment = (int)Math.Min(cpuNow - ideal, parameters.CpuThrottleIncrement);
            return Math.Min(current + increment, max);
        }

        int step = current == 0 ? (int)parameters.CpuThrottleInitial : current + (int)parameters.CpuThrottleIncrement;
        if (!parameters.XThrottleComputed)
        {
            return Math.Min(step, max);
        }

        // The CPU share that brings the dirtied bytes to half the trigger level: the dirty rate
        // scales with the CPU the guest gets.
        double idealCpu = cpuNow * (triggerBytes / 2) / dirtyBytes;
        int needed = (int)Math.Ceiling(100 - idealCpu);
        return Math.Min(Math.Max(step, needed), max);
    }
}
