using MiniVmm.Migration.Control;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Control;

/// <summary>The in-memory recorder of a migration's course: bounded samples, passes and events.</summary>
[TestFixture]
public sealed class MigrationTimelineTests
{
    private static readonly DateTimeOffset Start = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static MigrationTimelineSample At(long timeMs, long pending = 0) => new(
        timeMs, MigrationStatus.Active, RunState.Running, Pass: 1, PendingBytes: pending, ThresholdBytes: 0,
        DirtyPagesRate: 0, BandwidthBytesPerSecond: 0, SectionBytes.Zero, NormalPages: 0, ZeroPages: 0, CpuThrottlePercentage: 0);

    [Test]
    public void Samples_are_kept_in_order_and_the_latest_is_the_last_added()
    {
        var timeline = new MigrationTimeline(Start);
        Assert.That(timeline.Latest, Is.Null);
        for (long t = 0; t < 500; t += 100)
        {
            timeline.AddSample(At(t, pending: 1000 - t));
        }

        Assert.Multiple(() =>
        {
            Assert.That(timeline.Samples.Select(s => s.TimeMs), Is.EqualTo(new long[] { 0, 100, 200, 300, 400 }));
            Assert.That(timeline.Latest!.PendingBytes, Is.EqualTo(600));
            Assert.That(timeline.StartedAt, Is.EqualTo(Start));
            Assert.That(timeline.SampleIntervalMs, Is.Zero, "no thinning yet");
        });
    }

    [Test]
    public void A_full_timeline_thins_to_every_other_sample_keeps_the_newest_and_widens_its_interval()
    {
        var timeline = new MigrationTimeline(Start, sampleCapacity: 8);
        for (long t = 0; t < 800; t += 100)
        {
            timeline.AddSample(At(t));
        }

        timeline.AddSample(At(800));

        Assert.Multiple(() =>
        {
            Assert.That(timeline.Samples.Select(s => s.TimeMs), Is.EqualTo(new long[] { 0, 100, 300, 500, 700, 800 }),
                "the first, every other one of the eight ending with the newest, then the new one");
            Assert.That(timeline.SampleIntervalMs, Is.EqualTo(200));
        });

        timeline.AddSample(At(850));
        timeline.AddSample(At(900), force: true);
        timeline.AddSample(At(1000));
        timeline.AddSample(At(1100));

        Assert.Multiple(() =>
        {
            Assert.That(timeline.Samples.Select(s => s.TimeMs), Is.EqualTo(new long[] { 0, 100, 300, 500, 700, 800, 900, 1100 }),
                "850 and 1000 are closer than the interval to the sample before; a forced sample is always kept");
            Assert.That(timeline.Latest!.TimeMs, Is.EqualTo(1100));
        });

        for (long t = 1300; t <= 3100; t += 200)
        {
            timeline.AddSample(At(t));
        }

        Assert.Multiple(() =>
        {
            Assert.That(timeline.Samples, Has.Count.LessThanOrEqualTo(8), "bounded");
            Assert.That(timeline.Latest!.TimeMs, Is.EqualTo(3100));
            Assert.That(timeline.Samples[^1].TimeMs, Is.GreaterThan(3100 - timeline.SampleIntervalMs), "kept up to the interval");
            Assert.That(timeline.Samples[0].TimeMs, Is.Zero, "the first sample stays: the whole span is still covered");
            Assert.That(timeline.SampleIntervalMs, Is.GreaterThanOrEqualTo(400));
        });
    }

    [Test]
    public void A_run_state_is_noted_only_when_it_changes()
    {
        var timeline = new MigrationTimeline(Start);
        bool first = timeline.NoteRunState(0, RunState.Running);
        bool same = timeline.NoteRunState(10, RunState.Running);
        bool stopped = timeline.NoteRunState(20, RunState.FinishMigrate);

        Assert.Multiple(() =>
        {
            Assert.That((first, same, stopped), Is.EqualTo((true, false, true)));
            Assert.That(
                timeline.Events.Select(e => (e.TimeMs, e.Kind, e.Name)),
                Is.EqualTo(new[]
                {
                    (0L, MigrationTimelineEventKind.RunState, "running"),
                    (20L, MigrationTimelineEventKind.RunState, "finish-migrate"),
                }));
        });
    }

    [Test]
    public void Events_and_passes_past_the_capacity_are_counted_not_kept()
    {
        var timeline = new MigrationTimeline(Start);
        for (int i = 0; i < MigrationTimeline.EventCapacity + 5; i++)
        {
            timeline.AddEvent(new MigrationTimelineEvent(i, MigrationTimelineEventKind.VmEvent, "STOP"));
        }

        for (int i = 0; i < MigrationTimeline.EventCapacity + 2; i++)
        {
            timeline.AddPass(new MigrationPassRecord(i + 1, i, i + 1, SectionBytes.Zero, 0, 0));
        }

        Assert.Multiple(() =>
        {
            Assert.That(timeline.Events, Has.Count.EqualTo(MigrationTimeline.EventCapacity));
            Assert.That(timeline.Passes, Has.Count.EqualTo(MigrationTimeline.EventCapacity));
            Assert.That(timeline.DroppedEvents, Is.EqualTo(7));
        });
    }

    [Test]
    public void Section_bytes_subtract_kind_by_kind()
    {
        var later = new SectionBytes(Ram: 100, Vfio: 20, Harness: 3, Other: 7);
        var earlier = new SectionBytes(Ram: 40, Vfio: 5, Harness: 1, Other: 2);

        Assert.Multiple(() =>
        {
            Assert.That(later - earlier, Is.EqualTo(new SectionBytes(60, 15, 2, 5)));
            Assert.That((later - earlier).Total, Is.EqualTo(82));
            Assert.That(later[SectionKind.Vfio], Is.EqualTo(20));
        });
    }
}
