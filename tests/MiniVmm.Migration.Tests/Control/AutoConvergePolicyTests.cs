using MiniVmm.Migration.Control;

namespace MiniVmm.Migration.Tests.Control;

/// <summary>The auto-converge throttle decision, driven by hand-made times (a fake clock).</summary>
[TestFixture]
public sealed class AutoConvergePolicyTests
{
    private const long Start = 10_000;

    // 1000 dirty pages/s is 4 096 000 bytes dirtied per second: far more than the 1 000 bytes
    // sent per period below, so every period of 1 s or more trips the trigger.
    private const long Dirty = 1000;

    private static readonly MigrationParameters Defaults = new();

    /// <summary>Runs syncs every <paramref name="stepMs"/> from <see cref="Start"/>, sending 1000 bytes each; returns each decision.</summary>
    private static List<int?> Syncs(AutoConvergePolicy policy, int count, long stepMs, MigrationParameters parameters, long dirty = Dirty)
    {
        var decisions = new List<int?>();
        int throttle = 0;
        for (int i = 0; i < count; i++)
        {
            int? next = policy.OnSync(Start + i * stepMs, dirty, bytesSent: i * 1000L, throttle, parameters);
            decisions.Add(next);
            throttle = next ?? throttle;
        }

        return decisions;
    }

    [Test]
    public void The_first_sync_only_starts_a_period()
    {
        var policy = new AutoConvergePolicy();
        Assert.That(policy.OnSync(Start, Dirty, 0, 0, Defaults), Is.Null);
    }

    [Test]
    public void The_trigger_must_trip_in_two_periods_before_the_throttle_starts_at_cpu_throttle_initial()
    {
        List<int?> decisions = Syncs(new AutoConvergePolicy(), 3, 1000, Defaults with { CpuThrottleInitial = 30 });
        Assert.That(decisions, Is.EqualTo(new int?[] { null, null, 30 }));
    }

    [Test]
    public void Each_second_tripped_period_adds_cpu_throttle_increment()
    {
        List<int?> decisions = Syncs(new AutoConvergePolicy(), 7, 1000, Defaults with { CpuThrottleInitial = 20, CpuThrottleIncrement = 15 });
        Assert.That(decisions, Is.EqualTo(new int?[] { null, null, 20, null, 35, null, 50 }));
    }

    [Test]
    public void Syncs_less_than_a_second_into_a_period_change_nothing_and_keep_the_period_open()
    {
        var policy = new AutoConvergePolicy();
        Assert.Multiple(() =>
        {
            Assert.That(policy.OnSync(Start, Dirty, 0, 0, Defaults), Is.Null);
            Assert.That(policy.OnSync(Start + 999, Dirty, 0, 0, Defaults), Is.Null, "999 ms: not a period yet");
            Assert.That(policy.OnSync(Start + 1000, Dirty, 0, 0, Defaults), Is.Null, "1 s: the first tripped period");
            Assert.That(policy.OnSync(Start + 1500, Dirty, 0, 0, Defaults), Is.Null, "half a period");
            Assert.That(policy.OnSync(Start + 2000, Dirty, 0, 0, Defaults), Is.EqualTo(20), "the second tripped period");
        });
    }

    [Test]
    public void The_throttle_stops_growing_at_max_cpu_throttle()
    {
        List<int?> decisions = Syncs(
            new AutoConvergePolicy(), 7, 1000, Defaults with { CpuThrottleInitial = 60, CpuThrottleIncrement = 30, MaxCpuThrottle = 80 });
        Assert.That(decisions, Is.EqualTo(new int?[] { null, null, 60, null, 80, null, 80 }));
    }

    [Test]
    public void A_guest_dirtying_no_more_than_the_threshold_of_what_was_sent_is_not_throttled()
    {
        // 1 page/s over 1 s is 4096 bytes dirtied; 10 000 bytes sent per period at a 50 % threshold allows 5000.
        var policy = new AutoConvergePolicy();
        var decisions = new List<int?>();
        for (int i = 0; i < 6; i++)
        {
            decisions.Add(policy.OnSync(Start + i * 1000L, dirtyPagesRate: 1, bytesSent: i * 10_000L, 0, Defaults));
        }

        Assert.That(decisions, Is.All.Null);
    }

    [Test]
    public void The_trigger_threshold_is_a_percentage_of_the_bytes_sent()
    {
        // 4096 bytes dirtied per period against 10 000 sent: over a 40 % threshold (4000), not over 41 % (4100).
        static int? ThirdSync(long threshold)
        {
            var policy = new AutoConvergePolicy();
            MigrationParameters parameters = Defaults with { ThrottleTriggerThreshold = threshold };
            int? last = null;
            for (int i = 0; i < 3; i++)
            {
                last = policy.OnSync(Start + i * 1000L, dirtyPagesRate: 1, bytesSent: i * 10_000L, 0, parameters);
            }

            return last;
        }

        Assert.Multiple(() =>
        {
            Assert.That(ThirdSync(40), Is.EqualTo(20));
            Assert.That(ThirdSync(41), Is.Null);
        });
    }
}
