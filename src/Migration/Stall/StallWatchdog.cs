namespace MiniVmm.Migration.Stall;

/// <summary>
/// Fails a migration that made no progress for a while: every <see cref="PollInterval"/> it asks
/// a probe for the progress counter, and once the counter has stayed the same, with the side
/// waiting on its peer, for the timeout, it calls <c>stalled</c> once. The timeout is read at
/// each poll (a changed <c>x-stall-timeout</c> applies at once); 0 turns detection off. Time comes
/// from the <see cref="TimeProvider"/> given, so a test can drive <see cref="Poll"/> itself.
/// </summary>
public sealed class StallWatchdog : IDisposable
{
    /// <summary>How often the timer polls.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly Func<long> _timeoutMilliseconds;
    private readonly Func<StallProbe> _probe;
    private readonly Action<MigrationStalledException> _stalled;
    private readonly StallKind _kind;
    private readonly ITimer? _timer;
    private long _lastProgress = long.MinValue;
    private long _since;
    private bool _fired;
    private bool _disposed;

    /// <summary>Creates the watchdog and, unless <paramref name="startTimer"/> is false, its polling timer.</summary>
    /// <param name="time">The clock.</param>
    /// <param name="kind">Which side a stall here means has stopped (the peer).</param>
    /// <param name="timeoutMilliseconds">The current <c>x-stall-timeout</c>; 0 or less = off.</param>
    /// <param name="probe">
    /// Looks at the migration. Runs on the timer's thread (or the caller of <see cref="Poll"/>),
    /// under the watchdog's own lock, never under the big lock: it must only read counters.
    /// </param>
    /// <param name="stalled">
    /// Called at most once, when the stall is found, on the timer's thread, outside the watchdog's
    /// lock and without the big lock: it fails the migration (shuts its transport) and returns.
    /// </param>
    /// <param name="startTimer">False for a watchdog that only <see cref="Poll"/> drives.</param>
    public StallWatchdog(
        TimeProvider time,
        StallKind kind,
        Func<long> timeoutMilliseconds,
        Func<StallProbe> probe,
        Action<MigrationStalledException> stalled,
        bool startTimer = true)
    {
        _time = time;
        _kind = kind;
        _timeoutMilliseconds = timeoutMilliseconds;
        _probe = probe;
        _stalled = stalled;
        _since = time.GetTimestamp();
        if (startTimer)
        {
            _timer = time.CreateTimer(_ => Poll(), null, PollInterval, PollInterval);
        }
    }

    /// <summary>Whether the watchdog has found a stall.</summary>
    public bool Fired
    {
        get
        {
            lock (_gate)
            {
                return _fired;
            }
        }
    }

    /// <summary>
    /// Looks once: restarts the clock on progress, when the side is not waiting or when
    /// detection is off; reports the stall when the clock has run for the timeout. Any thread.
    /// </summary>
    /// <returns>True when this call found the stall.</returns>
    public bool Poll()
    {
        MigrationStalledException stall;
        lock (_gate)
        {
            if (_fired || _disposed)
            {
                return false;
            }

            long now = _time.GetTimestamp();
            long timeout = _timeoutMilliseconds();
            StallProbe look = _probe();
            if (timeout <= 0 || !look.Waiting || look.Progress != _lastProgress)
            {
                _lastProgress = look.Progress;
                _since = now;
                return false;
            }

            long idle = (long)_time.GetElapsedTime(_since, now).TotalMilliseconds;
            if (idle < timeout)
            {
                return false;
            }

            _fired = true;
            stall = new MigrationStalledException(_kind, look.Offset, idle, look.Detail);
        }

        _stalled(stall);
        return true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _timer?.Dispose();
    }
}
