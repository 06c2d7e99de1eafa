using MiniVmm.Migration.Control;

namespace MiniVmm.Migration.Tests.Control;

/// <summary>
/// The auto-converge throttle decision, driven by hand-made times (a fake clock) and RAM figures:
/// QEMU's step rule (<c>x-throttle-computed=off</c>), the computed rule and the tail-slow rule.
/// </summary>
[TestFixture]
public sealed class AutoConvergePolicyTests
{
    private const long Start = 10_000;

    // 1000 pages found dirty per second is 4 096 000 bytes dirtied per second: far more than the
    // 1 000 bytes sent per period below, so every period of 1 s or more trips the trigger.
    private const long Dirty = 1000;

    /// <summary>QEMU 7.2's rule: the step tests below hold it to QEMU's numbers.</summary>
    private static readonly MigrationParameters Defaults = new() { XThrottleComputed = false };

    private static readonly MigrationParameters Computed = new();

    /// <summary>Runs syncs every <paramref name="stepMs"/> from <see cref="Start"/>, sending 1000 bytes each; returns each decision.</summary>
    private static List<int?> Syncs(AutoConvergePolicy policy, int count, long stepMs, MigrationParameters parameters, long dirty = Dirty)
    {
        var decisions = new List<int?>();
        int throttle = 0;
        for (int i = 0; i < count; i++)
        {
            int? next = policy.OnSync(Start + i * stepMs, dirty * i * stepMs / 1000, bytesSent: i * 1000L, throttle, parameters);
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
    public void The_computed_rule_decides_after_half_a_second_where_qemu_s_rule_waits_a_second()
    {
        var computed = new AutoConvergePolicy();
        computed.OnSync(Start, 0, 0, 0, Computed);
        var qemu = new AutoConvergePolicy();
        qemu.OnSync(Start, 0, 0, 0, Defaults);

        Assert.Multiple(() =>
        {
            Assert.That(computed.OnSync(Start + 499, Dirty, 500, 0, Computed), Is.Null, "499 ms: not a period yet");
            Assert.That(computed.OnSync(Start + 500, Dirty, 500, 0, Computed), Is.Not.Null);
            Assert.That(qemu.OnSync(Start + 500, Dirty, 500, 0, Defaults), Is.Null);
        });
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
            Assert.That(policy.OnSync(Start, 0, 0, 0, Defaults), Is.Null);
            Assert.That(policy.OnSync(Start + 999, 999, 0, 0, Defaults), Is.Null, "999 ms: not a period yet");
            Assert.That(policy.OnSync(Start + 1000, 1000, 0, 0, Defaults), Is.Null, "1 s: the first tripped period");
            Assert.That(policy.OnSync(Start + 1500, 1500, 0, 0, Defaults), Is.Null, "half a period");
            Assert.That(policy.OnSync(Start + 2000, 2000, 0, 0, Defaults), Is.EqualTo(20), "the second tripped period");
        });
    }

    [Test]
    public void The_throttle_stops_growing_at_max_cpu_throttle()
    {
        List<int?> decisions = Syncs(
            new AutoConvergePolicy(), 7, 1000, Defaults with { CpuThrottleInitial = 60, CpuThrottleIncrement = 30, MaxCpuThrottle = 80 });
        Assert.That(decisions, Is.EqualTo(new int?[] { null, null, 60, null, 80, null, null }), "at the maximum there is nothing to change");
    }

    [Test]
    public void A_guest_dirtying_no_more_than_the_threshold_of_what_was_sent_is_not_throttled()
    {
        // 1 page/s over 1 s is 4096 bytes dirtied; 10 000 bytes sent per period at a 50 % threshold allows 5000.
        var policy = new AutoConvergePolicy();
        var decisions = new List<int?>();
        for (int i = 0; i < 6; i++)
        {
            decisions.Add(policy.OnSync(Start + i * 1000L, pagesDirtied: i, bytesSent: i * 10_000L, 0, Defaults));
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
                last = policy.OnSync(Start + i * 1000L, pagesDirtied: i, bytesSent: i * 10_000L, 0, parameters);
            }

            return last;
        }

        Assert.Multiple(() =>
        {
            Assert.That(ThirdSync(40), Is.EqualTo(20));
            Assert.That(ThirdSync(41), Is.Null);
        });
    }

    [Test]
    public void The_computed_rule_is_miniVmm_s_default()
    {
        Assert.That(new MigrationParameters().XThrottleComputed, Is.True);
    }

    [Test]
    public void The_computed_rule_acts_at_the_first_tripped_period_with_the_level_the_measured_rates_need()
    {
        // 8 s period: 1 GiB sent (128 MiB/s), the guest dirtied 50 000 pages/s (195 MiB/s).
        // Half the 50 % trigger of 128 MiB/s is 32 MiB/s: the guest may keep 32/195 of its CPU,
        // 16.4 %, so the throttle is 84 %.
        var policy = new AutoConvergePolicy();
        policy.OnSync(Start, 0, 0, 0, Computed);
        int? first = policy.OnSync(Start + 8000, 400_000, 1L << 30, 0, Computed);

        Assert.That(first, Is.EqualTo(84));
    }

    [Test]
    public void The_computed_rule_scales_the_measured_dirty_rate_by_the_cpu_the_guest_still_has()
    {
        // Under a 50 % throttle the guest dirtied 100 pages/s (409 600 bytes/s) while 409 600 bytes/s
        // were sent: half the trigger is 102 400 bytes/s, a quarter of what it dirtied, so it may keep
        // 50 % / 4 = 12.5 % of the CPU: 88 % (rounded up).
        var policy = new AutoConvergePolicy();
        policy.OnSync(Start, 0, 0, 50, Computed);
        int? next = policy.OnSync(Start + 1000, 100, 409_600, 50, Computed);

        Assert.That(next, Is.EqualTo(88));
    }

    [Test]
    public void The_computed_rule_never_gives_less_than_the_step_rule()
    {
        // Barely over the trigger: the needed level is below cpu-throttle-initial, which wins.
        var policy = new AutoConvergePolicy();
        policy.OnSync(Start, 0, 0, 0, Computed);
        int? next = policy.OnSync(Start + 1000, 1, 8000, 0, Computed with { CpuThrottleInitial = 30 });

        // 4096 dirtied vs a 4000-byte trigger: needed 100 - 100 × 2000 / 4096 = 52 > 30.
        Assert.That(next, Is.EqualTo(52));

        var again = new AutoConvergePolicy();
        again.OnSync(Start, 0, 0, 0, Computed);
        int? initial = again.OnSync(Start + 1000, 1, 8000, 0, Computed with { CpuThrottleInitial = 60 });
        Assert.That(initial, Is.EqualTo(60), "cpu-throttle-initial is the floor of the first step");
    }

    [Test]
    public void The_computed_rule_stops_at_max_cpu_throttle_and_reports_no_change_there()
    {
        var policy = new AutoConvergePolicy();
        policy.OnSync(Start, 0, 0, 0, Computed);
        int? first = policy.OnSync(Start + 1000, Dirty, 1000, 0, Computed with { MaxCpuThrottle = 90 });
        int? second = policy.OnSync(Start + 2000, 2 * Dirty, 2000, 90, Computed with { MaxCpuThrottle = 90 });

        Assert.Multiple(() =>
        {
            Assert.That(first, Is.EqualTo(90));
            Assert.That(second, Is.Null, "already at the maximum");
        });
    }

    [Test]
    public void Tailslow_grows_an_active_throttle_by_the_smaller_of_the_increment_and_the_gap_to_the_ideal()
    {
        MigrationParameters tailslow = Defaults with { CpuThrottleTailslow = true, CpuThrottleIncrement = 10 };

        // At 40 %: 60 % CPU. Dirtied 4096 × 1 × 1 s against a 50 % trigger of 7000 sent (3500):
        // ideal CPU = floor(60 × 3500 / 4096) = 51, a gap of 9 < 10: throttle 49.
        var near = new AutoConvergePolicy();
        near.OnSync(Start, 0, 0, 40, tailslow);
        near.OnSync(Start + 1000, 1, 7000, 40, tailslow);
        int? small = near.OnSync(Start + 2000, 2, 14_000, 40, tailslow);

        // Far over the trigger the gap is large: the increment caps it.
        var far = new AutoConvergePolicy();
        far.OnSync(Start, 0, 0, 40, tailslow);
        far.OnSync(Start + 1000, Dirty, 1000, 40, tailslow);
        int? capped = far.OnSync(Start + 2000, 2 * Dirty, 2000, 40, tailslow);

        Assert.Multiple(() =>
        {
            Assert.That(small, Is.EqualTo(49));
            Assert.That(capped, Is.EqualTo(50));
        });
    }

    [Test]
    public void Tailslow_starts_an_inactive_throttle_at_cpu_throttle_initial()
    {
        MigrationParameters tailslow = Defaults with { CpuThrottleTailslow = true, CpuThrottleInitial = 25 };
        List<int?> decisions = Syncs(new AutoConvergePolicy(), 3, 1000, tailslow);
        Assert.That(decisions, Is.EqualTo(new int?[] { null, null, 25 }));
    }
}
