using System.Diagnostics;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Control;

/// <summary>
/// Records one outgoing migration's course: its <see cref="MigrationTimeline"/> (samples per
/// rate window, passes, phases, status changes and the VM's own events) and, with a
/// <see cref="MigrationTelemetry"/>, the same figures as metrics and trace spans (the
/// migration's root span, one per phase, one per iteration). Fed by the migration thread unless
/// noted; the VM's events arrive on the emitting thread.
/// </summary>
internal sealed class OutgoingMigrationRecorder : IDisposable
{
    private readonly MigrationSession _session;
    private readonly VirtualMachine _vm;
    private readonly IRamTransferStatistics? _ram;
    private readonly MigrationTelemetry? _telemetry;
    private readonly SectionByteCounts _bytes;
    private readonly MigrationCounters _counters;
    private readonly TimeProvider _time;
    private readonly long _startTime;
    private readonly IDisposable _vmEvents;

    private Activity? _root;
    private Activity? _iteration;
    private bool _iterating;
    private int _iterationPass;
    private long _iterationStartMs;
    private SectionBytes _iterationStartBytes;
    private long _iterationSpanStartMs;
    private SectionBytes _iterationSpanStartBytes;
    private bool _ramStarted;
    private long _pagesNormal;
    private long _pagesZero;
    private long _pendingBytes;     // read by the gauges through the timeline only

    /// <summary>Starts the timeline at <paramref name="startTime"/> with the VM's run state, and listens to the VM's events.</summary>
    /// <param name="session">The migration recorded (its status and error).</param>
    /// <param name="vm">The source VM.</param>
    /// <param name="ram">The RAM transfer statistics, when there is RAM to migrate.</param>
    /// <param name="telemetry">The metrics and traces to feed, if any.</param>
    /// <param name="bytes">The stream bytes by section kind.</param>
    /// <param name="counters">The migration's rate counters.</param>
    /// <param name="startTime">The migration's start, in Unix milliseconds.</param>
    public OutgoingMigrationRecorder(
        MigrationSession session,
        VirtualMachine vm,
        IRamTransferStatistics? ram,
        MigrationTelemetry? telemetry,
        SectionByteCounts bytes,
        MigrationCounters counters,
        long startTime)
    {
        _session = session;
        _vm = vm;
        _ram = ram;
        _telemetry = telemetry;
        _bytes = bytes;
        _counters = counters;
        _time = vm.Time;
        _startTime = startTime;
        Timeline = new MigrationTimeline(DateTimeOffset.FromUnixTimeMilliseconds(startTime));
        Timeline.NoteRunState(0, vm.State);
        _vmEvents = vm.Events.Subscribe(OnVmEvent);
    }

    /// <summary>The migration's course over time. Any thread.</summary>
    public MigrationTimeline Timeline { get; }

    /// <summary>Pending bytes as last estimated, for the samples and the pass records. Any thread.</summary>
    public long PendingBytes
    {
        get => Volatile.Read(ref _pendingBytes);
        set => Volatile.Write(ref _pendingBytes, value);
    }

    /// <summary>Makes the session the one the gauges report and opens its root span. Migration thread, once, first.</summary>
    public void Start()
    {
        _telemetry?.Track(_session);
        _root = _telemetry?.StartActivity("migration.outgoing");
        _root?.SetTag("migration.downtime_limit_ms", _session.Parameters.DowntimeLimit);
        _root?.SetTag("migration.max_bandwidth", _session.Parameters.MaxBandwidth);
    }

    /// <summary>From now on samples carry the RAM statistics (setup has sent the RAM's first section).</summary>
    public void RamStarted() => _ramStarted = true;

    /// <summary>Notes an event of the migration in the timeline, at the present time.</summary>
    public void AddEvent(MigrationTimelineEventKind kind, string name, string? detail = null) =>
        Timeline.AddEvent(new MigrationTimelineEvent(ElapsedMs(), kind, name, detail));

    /// <summary>Notes the VM's present run state in the timeline.</summary>
    public void NoteRunState() => Timeline.NoteRunState(ElapsedMs(), _vm.State);

    /// <summary>Runs one phase of the migration thread in a span of its own, noted in the timeline; a failure marks the span.</summary>
    public void Phase(string phase, string spanName, Action body)
    {
        using Activity? activity = StartPhase(phase, spanName);
        try
        {
            body();
        }
        catch (Exception error)
        {
            MigrationTelemetry.SetError(activity, error);
            throw;
        }
    }

    /// <summary>Notes a phase in the timeline and opens its span, which the caller stops.</summary>
    public Activity? StartPhase(string phase, string spanName)
    {
        AddEvent(MigrationTimelineEventKind.Phase, phase);
        return _telemetry?.StartActivity(spanName);
    }

    /// <summary>Counts <paramref name="count"/> new dirty syncs; each ends the pass being recorded and starts the next.</summary>
    public void PassesCounted(long count)
    {
        _telemetry?.DirtySyncs(count);
        if (_iterating)
        {
            StartIteration(EndIteration(nextPassFollows: true));
        }
    }

    /// <summary>Records the completed migration's downtime.</summary>
    public void Downtime(long milliseconds) => _telemetry?.Downtime(milliseconds);

    /// <summary>
    /// Starts the record of the pass the dirty-sync count says is being sent, and an iteration
    /// span unless one is open (a span covers passes that came faster than a rate window).
    /// </summary>
    /// <param name="startMs">When it starts (the previous pass's end), in ms since the start; now when null.</param>
    public void StartIteration(long? startMs = null)
    {
        _iterating = true;
        _iterationPass = (int)_counters.Passes;
        _iterationStartMs = startMs ?? ElapsedMs();
        _iterationStartBytes = _bytes.Snapshot();
        if (_iteration is null && _telemetry is not null)
        {
            _iteration = _telemetry.StartActivity("migration.iteration");
            _iteration?.SetTag("migration.pass", _iterationPass);
            _iterationSpanStartMs = _iterationStartMs;
            _iterationSpanStartBytes = _iterationStartBytes;
        }
    }

    /// <summary>
    /// Ends the current pass: its record in the timeline and, unless <paramref name="nextPassFollows"/>
    /// and the span is younger than a rate window, its span (failed if the migration is). Passes
    /// can follow each other every few milliseconds near convergence (each exact pending sync is
    /// one): one span per pass would flood a trace, so a span lasts at least a window and carries
    /// the first and last pass it covers.
    /// </summary>
    /// <returns>When it ended, in ms since the start.</returns>
    public long EndIteration(bool nextPassFollows = false)
    {
        long end = ElapsedMs();
        if (!_iterating)
        {
            return end;
        }

        _iterating = false;
        SectionBytes now = _bytes.Snapshot();
        long pending = PendingBytes;
        long dirtyRate = _ram?.Snapshot().DirtyPagesRate ?? 0;
        Timeline.AddPass(new MigrationPassRecord(_iterationPass, _iterationStartMs, end, now - _iterationStartBytes, pending, dirtyRate));
        if (_iteration is { } iteration && (!nextPassFollows || end - _iterationSpanStartMs >= MigrationCounters.WindowMilliseconds))
        {
            iteration.SetTag("migration.pass.last", _iterationPass);
            iteration.SetTag("migration.bytes_sent", (now - _iterationSpanStartBytes).Total);
            iteration.SetTag("migration.pending", pending);
            iteration.SetTag("migration.dirty_rate", dirtyRate);
            if (_session.Status == MigrationStatus.Failed && _session.Error is { } error)
            {
                MigrationTelemetry.SetError(iteration, error);
            }

            iteration.Stop();
            _iteration = null;
        }

        return end;
    }

    /// <summary>
    /// Takes a sample of the migration into the timeline and feeds the page counters with what
    /// was sent since the last sample.
    /// </summary>
    /// <param name="force">Keep the sample even within the timeline's sampling interval.</param>
    public void Sample(bool force = false)
    {
        long now = ElapsedMs();
        RamTransferStats? ram = _ramStarted ? _ram?.Snapshot() : null;
        long normal = ram?.Normal ?? 0;
        long zero = ram?.Duplicate ?? 0;
        _telemetry?.PagesSent(normal - _pagesNormal, zero - _pagesZero);
        (_pagesNormal, _pagesZero) = (normal, zero);
        RunState state = _vm.State;
        Timeline.NoteRunState(now, state);
        Timeline.AddSample(
            new MigrationTimelineSample(
                now,
                _session.Status,
                state,
                (int)_counters.Passes,
                PendingBytes,
                _counters.Threshold,
                ram?.DirtyPagesRate ?? 0,
                _counters.BandwidthBytesPerSecond,
                _bytes.Snapshot(),
                normal,
                zero,
                _vm.CpuThrottlePercentage),
            force);
    }

    /// <summary>
    /// Ends the migration's root span with its outcome, counts the outcome, stops reporting the
    /// session in the gauges and stops listening to the VM. Migration thread, once, last.
    /// </summary>
    /// <param name="totalTime">The migration's total time, in milliseconds.</param>
    /// <param name="downtime">Its downtime, in milliseconds (used when it completed).</param>
    public void Finish(long totalTime, long downtime)
    {
        MigrationStatus status = _session.Status;
        _telemetry?.OutgoingFinished(status, totalTime);
        if (_root is { } root)
        {
            root.SetTag(MigrationTelemetry.StatusTag, status.ToQapiName());
            root.SetTag("migration.total_time_ms", totalTime);
            root.SetTag("migration.passes", _counters.Passes);
            root.SetTag("migration.bytes_sent", _bytes.Snapshot().Total);
            if (status == MigrationStatus.Completed)
            {
                root.SetTag("migration.downtime_ms", downtime);
                root.SetStatus(ActivityStatusCode.Ok);
            }
            else if (status == MigrationStatus.Failed)
            {
                MigrationTelemetry.SetError(root, _session.Error ?? new InvalidOperationException("the migration failed"));
            }

            root.Stop();
            _root = null;
        }

        _telemetry?.Untrack(_session);
        _vmEvents.Dispose();
    }

    /// <summary>Stops listening to the VM's events.</summary>
    public void Dispose() => _vmEvents.Dispose();

    /// <summary>Keeps the VM's events (not the migration's own) and the run state they reveal in the timeline. Emitting thread.</summary>
    private void OnVmEvent(VmEvent vmEvent)
    {
        if (vmEvent.Name is "MIGRATION" or "MIGRATION_PASS")
        {
            return;
        }

        long at = vmEvent.Timestamp.ToUnixTimeMilliseconds() - _startTime;
        Timeline.AddEvent(new MigrationTimelineEvent(
            at, MigrationTimelineEventKind.VmEvent, vmEvent.Name, vmEvent.Data?.ToJsonString()));
        Timeline.NoteRunState(at, _vm.State);
    }

    private long ElapsedMs() => _time.GetUtcNow().ToUnixTimeMilliseconds() - _startTime;
}
