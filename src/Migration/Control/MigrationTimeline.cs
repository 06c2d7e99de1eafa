using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Control;

/// <summary>
/// What happened during one outgoing migration, over time, kept in memory for a report or a
/// post-mortem: a sample per rate window (about every 100 ms) of pending bytes, the
/// switchover threshold, dirty rate, bandwidth, bytes sent per section kind, pages and the
/// throttle; a record per pass (between two dirty-bitmap syncs); and the events — status
/// changes, run-state changes, phases, throttle changes and the VM's own events (STOP, RESUME,
/// VFIO_MIGRATION, GUEST_HARNESS_...). The migration thread records, anyone reads (the
/// getters return copies). Fed by the same code that feeds the <see cref="MigrationTelemetry"/>
/// metrics.
/// </summary>
/// <remarks>
/// Memory is bounded: when <see cref="SampleCapacity"/> samples are held, every other one is
/// dropped (never the first nor the newest) and the sampling interval doubles, so a long
/// migration keeps its whole span at a
/// coarser grain (forced samples — phase boundaries and the last one — are always taken);
/// events and passes past <see cref="EventCapacity"/> are counted in <see cref="DroppedEvents"/>.
/// </remarks>
public sealed class MigrationTimeline
{
    /// <summary>The default number of samples held before thinning (an hour at 10 samples a second).</summary>
    public const int DefaultSampleCapacity = 36_000;

    /// <summary>The number of events, and of passes, held at most.</summary>
    public const int EventCapacity = 10_000;

    private readonly Lock _gate = new();
    private readonly List<MigrationTimelineSample> _samples = [];
    private readonly List<MigrationPassRecord> _passes = [];
    private readonly List<MigrationTimelineEvent> _events = [];
    private volatile MigrationTimelineSample? _latest;
    private long _intervalMs;
    private long _droppedEvents;
    private RunState? _runState;

    /// <summary>Creates an empty timeline for a migration that started at <paramref name="startedAt"/>.</summary>
    /// <param name="startedAt">Time zero of every record.</param>
    /// <param name="sampleCapacity">How many samples are held before thinning; at least 4.</param>
    public MigrationTimeline(DateTimeOffset startedAt, int sampleCapacity = DefaultSampleCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleCapacity, 4);
        StartedAt = startedAt;
        SampleCapacity = sampleCapacity;
    }

    /// <summary>When the migration started (time zero of every <c>TimeMs</c>).</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>How many samples are held before every other one is dropped.</summary>
    public int SampleCapacity { get; }

    /// <summary>
    /// The shortest gap between two unforced samples, in milliseconds: 0 until the first
    /// thinning, then doubled by each.
    /// </summary>
    public long SampleIntervalMs
    {
        get
        {
            lock (_gate)
            {
                return _intervalMs;
            }
        }
    }

    /// <summary>The newest sample, or null before the first (what the metric gauges report).</summary>
    public MigrationTimelineSample? Latest => _latest;

    /// <summary>The samples in time order (a copy).</summary>
    public IReadOnlyList<MigrationTimelineSample> Samples
    {
        get
        {
            lock (_gate)
            {
                return [.. _samples];
            }
        }
    }

    /// <summary>One record per finished pass, in order (a copy).</summary>
    public IReadOnlyList<MigrationPassRecord> Passes
    {
        get
        {
            lock (_gate)
            {
                return [.. _passes];
            }
        }
    }

    /// <summary>The events in time order (a copy).</summary>
    public IReadOnlyList<MigrationTimelineEvent> Events
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Events and passes not kept because <see cref="EventCapacity"/> was reached.</summary>
    public long DroppedEvents => Interlocked.Read(ref _droppedEvents);

    /// <summary>
    /// Adds a sample. An unforced sample closer than <see cref="SampleIntervalMs"/> to the
    /// previous one is only kept as <see cref="Latest"/>.
    /// </summary>
    /// <param name="sample">The sample; its time must not be before the previous one's.</param>
    /// <param name="force">Keep it whatever the interval (phase boundaries, the last sample).</param>
    public void AddSample(MigrationTimelineSample sample, bool force = false)
    {
        ArgumentNullException.ThrowIfNull(sample);
        lock (_gate)
        {
            _latest = sample;
            if (!force && _samples.Count > 0 && sample.TimeMs - _samples[^1].TimeMs < _intervalMs)
            {
                return;
            }

            if (_samples.Count >= SampleCapacity)
            {
                Thin();
            }

            _samples.Add(sample);
        }
    }

    /// <summary>Adds the record of a finished pass.</summary>
    public void AddPass(MigrationPassRecord pass)
    {
        ArgumentNullException.ThrowIfNull(pass);
        lock (_gate)
        {
            if (_passes.Count >= EventCapacity)
            {
                _droppedEvents++;
                return;
            }

            _passes.Add(pass);
        }
    }

    /// <summary>Adds an event.</summary>
    public void AddEvent(MigrationTimelineEvent timelineEvent)
    {
        ArgumentNullException.ThrowIfNull(timelineEvent);
        lock (_gate)
        {
            AddEventLocked(timelineEvent);
        }
    }

    /// <summary>
    /// Adds a <see cref="MigrationTimelineEventKind.RunState"/> event if <paramref name="state"/>
    /// differs from the last run state recorded; true when it did.
    /// </summary>
    public bool NoteRunState(long timeMs, RunState state)
    {
        lock (_gate)
        {
            if (_runState == state)
            {
                return false;
            }

            _runState = state;
            AddEventLocked(new MigrationTimelineEvent(timeMs, MigrationTimelineEventKind.RunState, state.ToQapiName()));
            return true;
        }
    }

    private void AddEventLocked(MigrationTimelineEvent timelineEvent)
    {
        if (_events.Count >= EventCapacity)
        {
            _droppedEvents++;
            return;
        }

        _events.Add(timelineEvent);
    }

    /// <summary>Keeps every other sample (the first and the newest always) and doubles the interval.</summary>
    private void Thin()
    {
        int kept = 0;
        int last = _samples.Count - 1;
        for (int i = 0; i <= last; i++)
        {
            if (i == 0 || (last - i) % 2 == 0)
            {
                _samples[kept++] = _samples[i];
            }
        }

        _samples.RemoveRange(kept, _samples.Count - kept);
        _intervalMs = _intervalMs == 0 ? Math.Max(1, _samples[^1].TimeMs - _samples[^2].TimeMs) : _intervalMs * 2;
    }
}

/// <summary>One point of a <see cref="MigrationTimeline"/>: the migration as it stood at <see cref="TimeMs"/>.</summary>
/// <param name="TimeMs">Milliseconds since the migration started.</param>
/// <param name="Status">The migration's status.</param>
/// <param name="RunState">The source VM's run state.</param>
/// <param name="Pass">The pass being sent (the dirty-sync count; 0 before the first sync or without RAM).</param>
/// <param name="PendingBytes">What was still to send at the last look (bytes).</param>
/// <param name="ThresholdBytes">The switchover threshold: what the measured bandwidth moves within the downtime limit (bytes).</param>
/// <param name="DirtyPagesRate">How fast the guest dirties RAM (pages per second, as <c>query-migrate</c>).</param>
/// <param name="BandwidthBytesPerSecond">The bandwidth measured over the last window.</param>
/// <param name="BytesSent">Stream bytes sent so far by section kind.</param>
/// <param name="NormalPages">RAM pages sent with their data so far.</param>
/// <param name="ZeroPages">RAM pages sent as zero pages so far.</param>
/// <param name="CpuThrottlePercentage">The auto-converge vCPU throttle.</param>
public sealed record MigrationTimelineSample(
    long TimeMs,
    MigrationStatus Status,
    RunState RunState,
    int Pass,
    long PendingBytes,
    long ThresholdBytes,
    long DirtyPagesRate,
    double BandwidthBytesPerSecond,
    SectionBytes BytesSent,
    long NormalPages,
    long ZeroPages,
    int CpuThrottlePercentage);

/// <summary>One finished pass: from one dirty-bitmap sync to the next (or to the switchover).</summary>
/// <param name="Pass">The pass number (the dirty-sync count during it, as <c>MIGRATION_PASS</c>).</param>
/// <param name="StartMs">When it started, in milliseconds since the migration started.</param>
/// <param name="EndMs">When it ended.</param>
/// <param name="BytesSent">Stream bytes sent during the pass, by section kind.</param>
/// <param name="PendingBytesAtEnd">What was still to send when it ended (bytes).</param>
/// <param name="DirtyPagesRate">The dirty rate when it ended (pages per second).</param>
public sealed record MigrationPassRecord(
    int Pass, long StartMs, long EndMs, SectionBytes BytesSent, long PendingBytesAtEnd, long DirtyPagesRate);

/// <summary>Something that happened at one moment of a migration.</summary>
/// <param name="TimeMs">Milliseconds since the migration started.</param>
/// <param name="Kind">What sort of event.</param>
/// <param name="Name">
/// The new status or run state (QAPI names), the phase (<c>setup</c>, <c>iteration</c>,
/// <c>switchover</c>, <c>stop</c>, <c>pause</c>, <c>device_state</c>, <c>complete</c>,
/// <c>cleanup</c>), the throttle percentage, or the VM event's name.
/// </param>
/// <param name="Detail">The VM event's data as JSON, the error of a failed status; null otherwise.</param>
public sealed record MigrationTimelineEvent(long TimeMs, MigrationTimelineEventKind Kind, string Name, string? Detail = null);

/// <summary>The sorts of <see cref="MigrationTimelineEvent"/>.</summary>
public enum MigrationTimelineEventKind
{
    /// <summary>The migration's status changed (<c>MIGRATION</c>).</summary>
    Status,

    /// <summary>The source VM's run state changed.</summary>
    RunState,

    /// <summary>A phase of the migration thread started.</summary>
    Phase,

    /// <summary>Auto-converge changed the vCPU throttle.</summary>
    Throttle,

    /// <summary>The VM emitted an event (STOP, RESUME, VFIO_MIGRATION, GUEST_HARNESS_..., ...).</summary>
    VmEvent,

    /// <summary>Another part of the VM noted an activity through <see cref="IMigrationActivityNotes"/> (a harness PAUSE or RUN).</summary>
    Activity,
}
