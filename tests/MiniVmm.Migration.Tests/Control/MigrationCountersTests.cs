using MiniVmm.Migration.Control;

namespace MiniVmm.Migration.Tests.Control;

/// <summary>The per-window rate counters of an outgoing migration, driven by hand-made times.</summary>
[TestFixture]
public sealed class MigrationCountersTests
{
    private const long Start = 50_000;

    private static RamTransferStats Ram(long pages, long remaining, long dirtyRate) =>
        RamTransferStats.Empty with { Normal = pages, Remaining = remaining, DirtyPagesRate = dirtyRate };

    [Test]
    public void Before_the_first_window_closes_the_threshold_is_zero_and_the_expected_downtime_the_limit()
    {
        var counters = new MigrationCounters(downtimeLimit: 300);
        counters.StartWindow(Start, bytesWritten: 0);
        Assert.Multiple(() =>
        {
            Assert.That(counters.Update(Start + 99, 1_000_000, null, 300), Is.False, "99 ms: the window is still open");
            Assert.That(counters.Threshold, Is.Zero);
            Assert.That(counters.ExpectedDowntime, Is.EqualTo(300));
            Assert.That(counters.WindowEnd, Is.EqualTo(Start + MigrationCounters.WindowMilliseconds));
        });
    }

    [Test]
    public void A_closed_window_gives_bandwidth_threshold_mbps_and_pages_per_second()
    {
        var counters = new MigrationCounters(downtimeLimit: 300);
        counters.StartWindow(Start, bytesWritten: 0);

        // 1 000 000 bytes in 100 ms: 10 000 bytes/ms, 10 MB/s, 80 Mbit/s; 500 pages in 100 ms.
        bool closed = counters.Update(Start + 100, 1_000_000, Ram(pages: 500, remaining: 2_000_000, dirtyRate: 10), downtimeLimit: 300);

        Assert.Multiple(() =>
        {
            Assert.That(closed, Is.True);
            Assert.That(counters.BandwidthBytesPerSecond, Is.EqualTo(10_000_000.0));
            Assert.That(counters.Threshold, Is.EqualTo(3_000_000), "bandwidth × downtime limit");
            Assert.That(counters.Mbps, Is.EqualTo(80.0).Within(1e-9));
            Assert.That(counters.PagesPerSecond, Is.EqualTo(5000));
            Assert.That(counters.ExpectedDowntime, Is.EqualTo(200), "2 000 000 remaining at 10 000 bytes/ms");
            Assert.That(counters.WindowEnd, Is.EqualTo(Start + 200), "the next window starts where this one closed");
        });
    }

    [Test]
    public void The_next_window_counts_only_its_own_bytes_and_pages()
    {
        var counters = new MigrationCounters(downtimeLimit: 300);
        counters.StartWindow(Start, bytesWritten: 0);
        counters.Update(Start + 100, 1_000_000, Ram(500, 0, 0), 300);
        counters.Update(Start + 300, 1_400_000, Ram(700, 0, 0), 300);

        Assert.Multiple(() =>
        {
            Assert.That(counters.BandwidthBytesPerSecond, Is.EqualTo(2_000_000.0), "400 000 bytes in 200 ms");
            Assert.That(counters.PagesPerSecond, Is.EqualTo(1000), "200 pages in 200 ms");
        });
    }

    [Test]
    public void The_expected_downtime_waits_for_a_dirty_rate_and_more_than_10000_bytes_in_the_window()
    {
        var counters = new MigrationCounters(downtimeLimit: 300);
        counters.StartWindow(Start, bytesWritten: 0);
        counters.Update(Start + 100, 1_000_000, Ram(0, remaining: 5_000_000, dirtyRate: 0), 300);
        long withoutDirtyRate = counters.ExpectedDowntime;
        counters.Update(Start + 200, 1_010_000, Ram(0, remaining: 5_000_000, dirtyRate: 10), 300);
        long withFewBytes = counters.ExpectedDowntime;

        Assert.Multiple(() =>
        {
            Assert.That(withoutDirtyRate, Is.EqualTo(300));
            Assert.That(withFewBytes, Is.EqualTo(300), "10 000 bytes is not more than 10 000");
        });
    }

    [Test]
    public void Passes_count_up_and_finish_makes_mbps_the_whole_migration()
    {
        var counters = new MigrationCounters(downtimeLimit: 300);
        Assert.Multiple(() =>
        {
            Assert.That(counters.AddPass(), Is.EqualTo(1));
            Assert.That(counters.AddPass(), Is.EqualTo(2));
            Assert.That(counters.Passes, Is.EqualTo(2));
        });

        counters.Finish(busyMs: 2000, bytesWritten: 25_000_000);
        Assert.That(counters.Mbps, Is.EqualTo(100.0).Within(1e-9), "25 MB in 2 s");
        counters.Finish(busyMs: 0, bytesWritten: 1);
        Assert.That(counters.Mbps, Is.EqualTo(100.0).Within(1e-9), "no busy time: unchanged");
    }

    [Test]
    public void A_window_in_which_the_source_ran_out_of_data_does_not_lower_the_bandwidth_estimate()
    {
        var counters = new MigrationCounters(downtimeLimit: 300);
        counters.StartWindow(Start, bytesWritten: 0);
        counters.Update(Start + 100, 1_000_000, null, 300, saturated: true);        // 10 MB/s, the link's speed
        counters.Update(Start + 200, 1_010_000, null, 300, saturated: false);       // 10 000 bytes: nothing to send
        double afterIdle = counters.BandwidthBytesPerSecond;
        long thresholdAfterIdle = counters.Threshold;
        double mbpsAfterIdle = counters.Mbps;
        counters.Update(Start + 300, 1_110_000, null, 300, saturated: true);        // 100 000 bytes while saturated: a slower link

        Assert.Multiple(() =>
        {
            Assert.That(afterIdle, Is.EqualTo(10_000_000.0), "an unsaturated window keeps the estimate");
            Assert.That(thresholdAfterIdle, Is.EqualTo(3_000_000));
            Assert.That(mbpsAfterIdle, Is.EqualTo(0.8).Within(1e-9), "mbps still reports what the window carried");
            Assert.That(counters.BandwidthBytesPerSecond, Is.EqualTo(1_000_000.0), "a saturated window lowers it");
        });
    }

    [Test]
    public void An_unsaturated_window_faster_than_the_estimate_raises_it()
    {
        var counters = new MigrationCounters(downtimeLimit: 300);
        counters.StartWindow(Start, bytesWritten: 0);
        counters.Update(Start + 100, 100_000, null, 300, saturated: true);
        counters.Update(Start + 200, 2_100_000, null, 300, saturated: false);

        Assert.That(counters.BandwidthBytesPerSecond, Is.EqualTo(20_000_000.0));
    }

    [Test]
    public void Avail_switchover_bandwidth_replaces_the_estimate_in_the_threshold_and_expected_downtime()
    {
        var counters = new MigrationCounters(downtimeLimit: 300);
        counters.StartWindow(Start, bytesWritten: 0);
        counters.Update(Start + 100, 1_000_000, Ram(500, remaining: 4_000_000, dirtyRate: 10), 300, saturated: true, switchoverBandwidth: 40_000_000);

        Assert.Multiple(() =>
        {
            Assert.That(counters.Threshold, Is.EqualTo(12_000_000), "40 MB/s × 300 ms");
            Assert.That(counters.ExpectedDowntime, Is.EqualTo(100), "4 000 000 bytes at 40 000 bytes/ms");
        });
    }

    [Test]
    public void The_estimate_is_the_slowest_of_the_last_three_saturated_windows()
    {
        var counters = new MigrationCounters(downtimeLimit: 300);
        counters.StartWindow(Start, bytesWritten: 0);
        long bytes = 0;
        var estimates = new List<double>();
        foreach (long windowBytes in new long[] { 1_000_000, 200_000, 1_000_000, 1_000_000, 1_000_000 })
        {
            bytes += windowBytes;
            counters.Update(Start + 100 * (estimates.Count + 1), bytes, null, 300, saturated: true);
            estimates.Add(counters.BandwidthBytesPerSecond);
        }

        // 10 MB/s, then one window at 2 MB/s holds the estimate down for three windows.
        Assert.That(estimates, Is.EqualTo(new[] { 10_000_000.0, 2_000_000.0, 2_000_000.0, 2_000_000.0, 10_000_000.0 }));
    }
}
