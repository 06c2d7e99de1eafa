using MiniVmm.Migration.Stall;
using MiniVmm.Migration.Tests.Ram;

namespace MiniVmm.Migration.Tests.Stall;

/// <summary>The stall watchdog's rule, driven by a clock that moves only when the test moves it.</summary>
[TestFixture]
public sealed class StallWatchdogTests
{
    private ManualTimeProvider _time = null!;
    private long _progress;
    private bool _waiting;
    private long _timeout;
    private List<MigrationStalledException> _stalls = null!;

    [SetUp]
    public void Reset()
    {
        _time = new ManualTimeProvider();
        _progress = 0;
        _waiting = true;
        _timeout = 5_000;
        _stalls = [];
    }

    private StallWatchdog Create(StallKind kind = StallKind.Destination) =>
        new(_time, kind, () => _timeout, () => new StallProbe(_progress, _waiting, 4096 + _progress, "probe detail"), _stalls.Add, startTimer: false);

    [Test]
    public void No_progress_for_the_timeout_fires_once_with_kind_offset_and_detail()
    {
        using StallWatchdog watchdog = Create();
        watchdog.Poll();
        _time.Advance(TimeSpan.FromMilliseconds(4_999));
        Assert.That(watchdog.Poll(), Is.False, "just under the timeout");

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.That(watchdog.Poll(), Is.True, "at the timeout");
        _time.Advance(TimeSpan.FromMilliseconds(10_000));
        watchdog.Poll();

        Assert.That(_stalls, Has.Count.EqualTo(1));
        MigrationStalledException stall = _stalls[0];
        Assert.Multiple(() =>
        {
            Assert.That(stall.Kind, Is.EqualTo(StallKind.Destination));
            Assert.That(stall.Offset, Is.EqualTo(4096));
            Assert.That(stall.IdleMilliseconds, Is.EqualTo(5_000));
            Assert.That(stall.Message, Does.Contain("the destination stopped taking the migration stream"));
            Assert.That(stall.Message, Does.Contain("at stream offset 4096 (0x1000)"));
            Assert.That(stall.Message, Does.Contain("probe detail"));
            Assert.That(watchdog.Fired, Is.True);
        });
    }

    [Test]
    public void Progress_restarts_the_clock()
    {
        using StallWatchdog watchdog = Create(StallKind.Source);
        watchdog.Poll();
        for (int i = 0; i < 10; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(4_000));
            _progress += 1;
            Assert.That(watchdog.Poll(), Is.False, $"progress at step {i}");
        }

        _time.Advance(TimeSpan.FromMilliseconds(5_000));
        Assert.That(watchdog.Poll(), Is.True);
        Assert.That(_stalls.Single().Message, Does.Contain("the source stopped sending"));
    }

    [Test]
    public void A_side_that_is_not_waiting_on_its_peer_never_stalls()
    {
        using StallWatchdog watchdog = Create();
        _waiting = false;
        watchdog.Poll();
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.That(watchdog.Poll(), Is.False);

        // Waiting again: the clock starts from now, not from the last progress.
        _waiting = true;
        _time.Advance(TimeSpan.FromMilliseconds(4_000));
        Assert.That(watchdog.Poll(), Is.False);
        _time.Advance(TimeSpan.FromMilliseconds(1_000));
        Assert.That(watchdog.Poll(), Is.True);
    }

    [Test]
    public void Timeout_zero_turns_detection_off_and_a_new_value_applies_at_the_next_poll()
    {
        using StallWatchdog watchdog = Create();
        _timeout = 0;
        watchdog.Poll();
        _time.Advance(TimeSpan.FromHours(1));
        Assert.That(watchdog.Poll(), Is.False, "x-stall-timeout=0");

        _timeout = 100;
        Assert.That(watchdog.Poll(), Is.False, "the clock restarts when detection comes on");
        _time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.That(watchdog.Poll(), Is.True);
    }

    [Test]
    public void A_disposed_watchdog_never_fires_and_dispose_is_idempotent()
    {
        StallWatchdog watchdog = Create();
        watchdog.Poll();
        watchdog.Dispose();
        watchdog.Dispose();
        _time.Advance(TimeSpan.FromHours(1));
        Assert.That(watchdog.Poll(), Is.False);
        Assert.That(_stalls, Is.Empty);
    }
}
