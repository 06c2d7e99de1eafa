namespace MiniVmm.Migration.Control;

/// <summary>
/// The outgoing migration's rate counters (QEMU's <c>migration_update_counters</c> and the
/// pass count of <c>migration_bitmap_sync</c>): per rate window of
/// <see cref="WindowMilliseconds"/>, the bandwidth estimate, the threshold of pending bytes
/// under which the source may switch over (bandwidth × downtime limit), mbps, pages per second
/// and expected downtime; and the number of dirty-sync passes. Updated by the migration thread;
/// the values are read by any thread (<c>query-migrate</c> snapshots, timeline samples).
/// </summary>
/// <remarks>
/// QEMU takes each window's bytes over its length as the bandwidth. A window in which the source
/// ran out of data to send (the guest dirtied little, or what is left only moves at the
/// switchover, like a device's stop-copy state) then reads as a slow link, the threshold falls
/// with it and the source waits for a switchover it could have made: passes pile up, and the
/// downtime depends on which window came last. Here only a <em>saturated</em> window (the source
/// had more to send than it sent, or the rate limit stopped it) may lower the estimate; any window
/// may raise it, since a window's bytes over its length never exceed what the link carried. The
/// estimate is the lowest of the last <see cref="RecentWindows"/> saturated windows: a switchover
/// decided on one fast window overran the downtime limit threefold when the rest of the pass was
/// slower.
/// </remarks>
public sealed class MigrationCounters
{
    /// <summary>The length of a rate window, in milliseconds (QEMU's <c>BUFFER_DELAY</c>).</summary>
    public const int WindowMilliseconds = 100;

    private long _windowStart;
    private long _windowStartBytes;
    private long _windowStartPages;
    private long _threshold;
    private double _bandwidth;
    private double _estimate;
    private readonly double[] _recent = new double[RecentWindows];
    private int _recentCount;
    private int _recentNext;
    private double _mbps;
    private long _pagesPerSecond;
    private long _expectedDowntime;
    private long _passes;

    /// <summary>Creates the counters; the expected downtime starts at <paramref name="downtimeLimit"/>.</summary>
    public MigrationCounters(long downtimeLimit) => _expectedDowntime = downtimeLimit;

    /// <summary>Pending bytes under which the source may switch over; 0 until a window was measured.</summary>
    public long Threshold => Volatile.Read(ref _threshold);

    /// <summary>The bandwidth estimate the threshold uses, in bytes per second (see the remarks).</summary>
    public double BandwidthBytesPerSecond => Volatile.Read(ref _bandwidth);

    /// <summary>The last window's throughput in megabits per second; over the whole migration once it completed.</summary>
    public double Mbps => Volatile.Read(ref _mbps);

    /// <summary>RAM pages (normal and zero) sent per second in the last window.</summary>
    public long PagesPerSecond => Volatile.Read(ref _pagesPerSecond);

    /// <summary>The downtime the remaining RAM would take at the last window's bandwidth, in milliseconds.</summary>
    public long ExpectedDowntime => Volatile.Read(ref _expectedDowntime);

    /// <summary>Dirty-sync passes counted so far.</summary>
    public long Passes => Volatile.Read(ref _passes);

    /// <summary>When the current rate window ends, in milliseconds.</summary>
    public long WindowEnd => Volatile.Read(ref _windowStart) + WindowMilliseconds;

    /// <summary>Starts the first rate window at <paramref name="nowMs"/> with <paramref name="bytesWritten"/> stream bytes already written.</summary>
    public void StartWindow(long nowMs, long bytesWritten)
    {
        Volatile.Write(ref _windowStart, nowMs);
        _windowStartBytes = bytesWritten;
    }

    /// <summary>
    /// Closes the rate window if it has lasted <see cref="WindowMilliseconds"/>: computes its
    /// figures and starts the next one at <paramref name="nowMs"/>.
    /// </summary>
    /// <param name="nowMs">The time, in milliseconds.</param>
    /// <param name="bytesWritten">Stream bytes written so far.</param>
    /// <param name="ram">The RAM transfer statistics, when there is RAM to migrate.</param>
    /// <param name="downtimeLimit">The downtime limit in force, in milliseconds.</param>
    /// <param name="saturated">Whether the source had more to send than it sent in this window (or was rate limited).</param>
    /// <param name="switchoverBandwidth">The bandwidth to assume for the switchover, bytes per second; 0 = the estimate.</param>
    /// <returns>Whether a window closed (the caller then starts the stream's next rate window).</returns>
    public bool Update(long nowMs, long bytesWritten, RamTransferStats? ram, long downtimeLimit, bool saturated = true, long switchoverBandwidth = 0)
    {
        long start = Volatile.Read(ref _windowStart);
        if (nowMs < start + WindowMilliseconds)
        {
            return false;
        }

        long transferred = bytesWritten - _windowStartBytes;
        long spent = nowMs - start;
        double measured = (double)transferred / spent; // bytes per ms
        if (saturated)
        {
            Remember(measured);
        }
        else if (measured > _estimate)
        {
            // The link carried at least this much: older, slower windows no longer describe it.
            _recentCount = 0;
            Remember(measured);
        }

        double bandwidth = switchoverBandwidth > 0 ? switchoverBandwidth / 1000.0 : _estimate;
        Volatile.Write(ref _threshold, (long)(bandwidth * downtimeLimit));
        Volatile.Write(ref _bandwidth, bandwidth * 1000);
        Volatile.Write(ref _mbps, transferred * 8.0 / (spent / 1000.0) / 1e6);
        if (ram is { } stats)
        {
            long pages = stats.Normal + stats.Duplicate;
            Volatile.Write(ref _pagesPerSecond, (long)((pages - _windowStartPages) * 1000.0 / spent));
            _windowStartPages = pages;
            if (stats.DirtyPagesRate != 0 && transferred > 10000 && bandwidth > 0)
            {
                Volatile.Write(ref _expectedDowntime, (long)(stats.Remaining / bandwidth));
            }
        }

        Volatile.Write(ref _windowStart, nowMs);
        _windowStartBytes = bytesWritten;
        return true;
    }

    /// <summary>How many saturated windows the estimate takes the lowest of.</summary>
    public const int RecentWindows = 3;

    /// <summary>
    /// Adds a window's bandwidth to the recent ones; the estimate is the lowest of the last
    /// <see cref="RecentWindows"/>, so one fast window (a destination that had its RAM ready for
    /// the first part of a pass, a burst into the socket buffers) does not promise a switchover
    /// the rest of the pass cannot keep.
    /// </summary>
    private void Remember(double bandwidth)
    {
        _recent[_recentNext] = bandwidth;
        _recentNext = (_recentNext + 1) % RecentWindows;
        _recentCount = Math.Min(_recentCount + 1, RecentWindows);
        double lowest = double.MaxValue;
        for (int i = 0; i < _recentCount; i++)
        {
            lowest = Math.Min(lowest, _recent[(_recentNext - 1 - i + RecentWindows) % RecentWindows]);
        }

        _estimate = lowest;
    }

    /// <summary>Counts one more dirty-sync pass; returns its number.</summary>
    public long AddPass() => Interlocked.Increment(ref _passes);

    /// <summary>
    /// At completion: mbps becomes the whole migration's, <paramref name="bytesWritten"/> over
    /// the <paramref name="busyMs"/> after setup (unchanged when that is not positive).
    /// </summary>
    public void Finish(long busyMs, long bytesWritten)
    {
        if (busyMs > 0)
        {
            Volatile.Write(ref _mbps, bytesWritten * 8.0 / busyMs / 1000.0);
        }
    }
}
