using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Multifd;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.ReturnPath;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.Transport;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Control;

/// <summary>
/// One outgoing migration: its parameters, capabilities, statistics, error and cancellation,
/// and the migration thread that runs it (QEMU's <c>migration_thread</c>): connect, header and
/// setup, iterate while the pending data exceeds what the measured bandwidth moves within the
/// downtime limit, then stop the VM (<c>finish-migrate</c>), complete, and leave the source in
/// <c>postmigrate</c>. A failure or cancel restarts the source if it was running, with its
/// memory intact. Status changes emit <c>MIGRATION</c> events when the <c>events</c>
/// capability is on. The rate figures live in a <see cref="MigrationCounters"/>, the
/// auto-converge decision in an <see cref="AutoConvergePolicy"/>; an
/// <see cref="OutgoingMigrationRecorder"/> records the course in <see cref="Timeline"/> and,
/// with a <see cref="MigrationTelemetry"/>, feeds the same figures to its metrics and traces.
/// </summary>
public sealed partial class MigrationSession : IDisposable
{
    private const int WindowMilliseconds = MigrationCounters.WindowMilliseconds;

    /// <summary>A round that sends less than this found nothing worth a new sync right away.</summary>
    private const long IdleRoundBytes = 64 << 10;

    private readonly SaveStateRegistry _registry;
    private readonly VirtualMachine _vm;
    private readonly SavevmOptions _savevm;
    private readonly MigrationCapabilities _capabilities;
    private readonly GlobalState? _globalState;
    private readonly IRamTransferStatistics? _ram;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _cancel = new();
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _continue = new(0);
    private readonly long _startTime;
    private readonly SectionByteCounts _bytes;
    private readonly OutgoingMigrationRecorder _recorder;
    private readonly MigrationCounters _counters;
    private readonly AutoConvergePolicy _autoConverge = new();

    private MigrationParameters _parameters;
    private int _status = (int)MigrationStatus.None;
    private volatile Exception? _error;
    private volatile MigrationStreamWriter? _stream;
    private System.IO.Stream? _transport;
    private ReturnPathReader? _returnPath;
    private MultifdSender? _multifd;
    private Thread? _thread;

    private long _setupTime = -1;
    private long _downtimeStart;
    private long _downtime = -1;
    private long _totalTime = -1;
    private bool _vmWasLive;
    private RunState? _stateBeforeSwitchover;
    private MigrationSwitchoverDecision? _switchover;
    private int _disposed;

    // The iteration loop's memory of the last round (migration thread only).
    private long _lastExactWhileWaiting = long.MinValue / 2;
    private bool _lastRoundFinished;
    private ulong _lastPending = ulong.MaxValue;
    private bool _windowSaturated;
    private long _lastRoundBytes = long.MaxValue;

    /// <summary>
    /// Creates the session (QEMU's <c>migrate_init</c>): status none → setup, start time taken.
    /// </summary>
    public MigrationSession(
        SaveStateRegistry registry,
        VirtualMachine vm,
        SavevmOptions savevm,
        MigrationParameters parameters,
        MigrationCapabilities capabilities,
        GlobalState? globalState = null,
        IRamTransferStatistics? ram = null,
        ILogger? logger = null,
        MigrationTelemetry? telemetry = null)
    {
        _registry = registry;
        _vm = vm;
        _savevm = savevm;
        _parameters = parameters;
        _capabilities = capabilities;
        _globalState = globalState;
        _ram = ram;
        _time = vm.Time;
        _logger = logger ?? NullLogger.Instance;
        _startTime = NowMs();
        _counters = new MigrationCounters(parameters.DowntimeLimit);
        _bytes = new SectionByteCounts(telemetry is null ? null : telemetry.SectionBytesSent);
        _recorder = new OutgoingMigrationRecorder(this, vm, ram, telemetry, _bytes, _counters, _startTime);
        SetStatus(MigrationStatus.None, MigrationStatus.Setup);
    }

    /// <summary>The migration's course over time: samples per rate window, passes and events. Any thread.</summary>
    public MigrationTimeline Timeline => _recorder.Timeline;

    /// <summary>Why and when the migration switched over; null before it did (or if it never did). Any thread.</summary>
    public MigrationSwitchoverDecision? SwitchoverDecision => Volatile.Read(ref _switchover);

    /// <summary>Notes another part's activity in the timeline (see <see cref="IMigrationActivityNotes"/>). Any thread.</summary>
    internal void NoteActivity(string name, string? detail) =>
        _recorder.AddEvent(MigrationTimelineEventKind.Activity, name, detail);

    /// <summary>Stream bytes written so far by section kind (<see cref="SectionBytes.Total"/> is the stream). Any thread.</summary>
    public SectionBytes BytesSent => _bytes.Snapshot();

    /// <summary>The current status.</summary>
    public MigrationStatus Status => (MigrationStatus)Volatile.Read(ref _status);

    /// <summary>Why the migration failed, once it has.</summary>
    public Exception? Error => _error;

    /// <summary>Completes when the migration thread has finished and cleaned up.</summary>
    public Task Finished => _finished.Task;

    /// <summary>Whether the destination has acked the switchover (always false without a return path).</summary>
    public bool SwitchoverAcked => _returnPath?.SwitchoverAcked ?? false;

    /// <summary>The parameters in force; changing max-bandwidth applies at once.</summary>
    public MigrationParameters Parameters => Volatile.Read(ref _parameters);

    /// <summary>
    /// Starts the migration thread. <paramref name="connect"/> opens the transport on that
    /// thread (a failure there moves setup → failed, as QEMU's asynchronous connect does).
    /// <paramref name="connectChannel"/> opens each multifd channel after it (null: the
    /// transport cannot carry more connections, and multifd fails as in QEMU).
    /// </summary>
    public void Start(Func<CancellationToken, System.IO.Stream> connect, Func<CancellationToken, System.IO.Stream>? connectChannel = null)
    {
        if (_thread is not null)
        {
            throw new InvalidOperationException("the migration thread already started");
        }

        _thread = new Thread(() => Run(connect, connectChannel)) { Name = "live_migration", IsBackground = true };
        _thread.Start();
    }

    /// <summary>Applies new parameters; the bandwidth limit takes effect for the next window.</summary>
    public void UpdateParameters(MigrationParameters parameters)
    {
        Volatile.Write(ref _parameters, parameters);
        if (_stream is { } stream && Status != MigrationStatus.Device)
        {
            stream.RateLimitBytes = parameters.BytesPerWindow;
        }
    }

    /// <summary>
    /// QMP <c>migrate_cancel</c>: moves a running migration to cancelling and shuts the
    /// transport so that pending writes fail; the thread then restarts the VM and cleans up.
    /// </summary>
    public void Cancel()
    {
        while (true)
        {
            MigrationStatus current = Status;
            if (!current.IsRunning() || current == MigrationStatus.Cancelling)
            {
                break;
            }

            if (SetStatus(current, MigrationStatus.Cancelling))
            {
                break;
            }
        }

        if (Status == MigrationStatus.Cancelling)
        {
            _cancel.Cancel();
            _continue.Release();
            ShutdownTransport();
        }
    }

    /// <summary>
    /// Fails a running migration from outside the migration thread, with
    /// <paramref name="reason"/> as its error (e.g. the guest harness disconnected): the status
    /// becomes <c>failed</c> at once and the transport is shut so that the thread stops; it then
    /// restores the source's run state and cleans up as after any failure. Does nothing to a
    /// migration that already ended. Any thread.
    /// </summary>
    public void Abort(Exception reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        while (true)
        {
            MigrationStatus current = Status;
            if (!current.IsRunning() || current == MigrationStatus.Cancelling)
            {
                return;
            }

            _error ??= reason;
            if (SetStatus(current, MigrationStatus.Failed))
            {
                break;
            }
        }

        LogFailed(reason, reason.Message);
        _continue.Release();
        ShutdownTransport();
    }

    /// <summary>
    /// QMP <c>migrate-continue</c>: lets a migration paused in <c>pre-switchover</c> go on.
    /// </summary>
    public void Continue(MigrationStatus expected)
    {
        if (Status != expected || expected != MigrationStatus.PreSwitchover)
        {
            throw new InvalidOperationException($"Migration not in expected state: {Status.ToQapiName()}");
        }

        _continue.Release();
    }

    /// <summary>An immutable snapshot for <c>query-migrate</c>, filled as QEMU 7.2 fills it for the status.</summary>
    public MigrationInfo Snapshot()
    {
        MigrationStatus status = Status;
        long now = NowMs();
        switch (status)
        {
            case MigrationStatus.Setup:
                return new MigrationInfo(status);
            case MigrationStatus.Active or MigrationStatus.Cancelling or MigrationStatus.PreSwitchover
                or MigrationStatus.Device or MigrationStatus.PostcopyActive:
                return new MigrationInfo(
                    status,
                    TotalTime: now - _startTime,
                    ExpectedDowntime: _counters.ExpectedDowntime,
                    SetupTime: Math.Max(0, Volatile.Read(ref _setupTime)),
                    Ram: _ram?.Snapshot(),
                    Mbps: _counters.Mbps,
                    PagesPerSecond: _counters.PagesPerSecond,
                    VfioTransferred: BytesTransferred(SectionKind.Vfio),
                    Passes: (int)_counters.Passes,
                    CpuThrottlePercentage: _vm.CpuThrottlePercentage);
            case MigrationStatus.Completed:
                return new MigrationInfo(
                    status,
                    TotalTime: _totalTime,
                    Downtime: _downtime,
                    SetupTime: Math.Max(0, _setupTime),
                    Ram: _ram?.Snapshot(),
                    Mbps: _counters.Mbps,
                    PagesPerSecond: _counters.PagesPerSecond,
                    VfioTransferred: BytesTransferred(SectionKind.Vfio),
                    Passes: (int)_counters.Passes);
            case MigrationStatus.Failed:
                return new MigrationInfo(status, ErrorDescription: _error?.Message);
            default:
                return new MigrationInfo(status);
        }
    }

    /// <summary>
    /// The device data bytes the handlers of <paramref name="kind"/> have sent in this migration
    /// (their <see cref="ISaveVmHandlers.BytesTransferred"/>, which each resets at setup): the
    /// devices' own data, not the section framing that <see cref="BytesSent"/> also counts. Null
    /// when no handler of that kind is registered (QEMU's <c>vfio_mig_active</c>).
    /// </summary>
    private long? BytesTransferred(SectionKind kind)
    {
        long? sum = null;
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            if (entry.Kind == kind && entry.Handlers is { } handlers)
            {
                sum = (sum ?? 0) + handlers.BytesTransferred;
            }
        }

        return sum;
    }

    private void Run(Func<CancellationToken, System.IO.Stream> connect, Func<CancellationToken, System.IO.Stream>? connectChannel)
    {
        SaveStateWriter? writer = null;
        MigrationStreamWriter? stream = null;
        long threadStart = NowMs();
        _recorder.Start();
        try
        {
            StartStallWatchdog();
            _recorder.Phase("setup", "migration.setup", () =>
            {
                _transport = connect(_cancel.Token);
                if (_transport is MiniVmm.Migration.Transport.Tls.TlsTransportStream tls)
                {
                    LogTlsEstablished(tls.Protocol.ToString(), tls.CipherSuite.ToString());
                }

                stream = new MigrationStreamWriter(_transport, leaveOpen: true);
                _stream = stream;
                stream.RateLimitBytes = Parameters.BytesPerWindow;
                if (_cancel.IsCancellationRequested)
                {
                    ShutdownTransport();
                }

                OpenMultifd(connectChannel);
                writer = new SaveStateWriter(_registry, stream, _savevm, _vm.Bql, _logger, _bytes);
                _counters.StartWindow(NowMs(), bytesWritten: 0);
                RunSetupPhase(writer);
                _recorder.RamStarted();
                CheckPasses();
                Volatile.Write(ref _setupTime, NowMs() - threadStart);
            });
            _recorder.Sample(force: true);
            SetStatus(MigrationStatus.Setup, MigrationStatus.Active);
            _recorder.StartIteration();
            RunIterations(writer!, stream!);
        }
        catch (Exception error)
        {
            Fail(error);
        }
        finally
        {
            _recorder.EndIteration();
            FinishAndCleanUp(writer);
        }
    }

    /// <summary>The iteration loop (QEMU's <c>migration_thread</c> body), until completion, failure or cancel.</summary>
    private void RunIterations(SaveStateWriter writer, MigrationStreamWriter stream)
    {
        while (Status == MigrationStatus.Active)
        {
            if (!stream.IsRateLimited && IterateOnce(writer, stream))
            {
                break;
            }

            if (DetectError(stream))
            {
                break;
            }

            // A round that found (next to) nothing to send while the pending data is still over
            // the threshold (what is left moves only at the switchover, or waits for an ack):
            // wait out the rate window instead of syncing the dirty log in a tight loop.
            bool idle = _lastRoundFinished && _lastRoundBytes < IdleRoundBytes;
            WaitForRateWindow(stream, idle);
        }

        DetectError(stream);
    }

    private void RunSetupPhase(SaveStateWriter writer)
    {
        if (_savevm.Target == WireTarget.QemuMaster)
        {
            using BigLock.Scope _ = _vm.Bql.Acquire();
            writer.WriteHeader();
            OpenReturnPath(writer);
            writer.Setup();
        }
        else
        {
            writer.WriteHeader();
            OpenReturnPath(writer);
            writer.Setup();
        }
    }

    /// <summary>
    /// With the <c>multifd</c> capability: opens the channels after the main connection and
    /// gives them to the RAM handler (QEMU 7.2's <c>multifd_save_setup</c>). A failing channel
    /// shuts the main connection, so the migration fails with the channel's error.
    /// </summary>
    private void OpenMultifd(Func<CancellationToken, System.IO.Stream>? connectChannel)
    {
        if (!_capabilities.IsEnabled(MigrationCapabilities.Multifd))
        {
            return;
        }

        RamMigrationHandler ram = RamMigrationHandler.Find(_registry)
            ?? throw new MigrationStreamException("multifd: no RAM to send on the channels");
        _multifd = MultifdSender.Open(
            (int)Parameters.MultifdChannels,
            connectChannel ?? throw new MigrationStreamException("multifd is not supported by current protocol"),
            _cancel.Token,
            _logger,
            failed: _ => TransportShutdown.Shutdown(_transport));
        ram.AttachMultifd(_multifd);
    }

    /// <summary>
    /// With the <c>return-path</c> capability: starts reading the destination's messages from
    /// the connection and asks it to open its end (OPEN_RETURN_PATH, then PING 1), as QEMU does
    /// right after the header. Only a two-way connection can carry it.
    /// </summary>
    private void OpenReturnPath(SaveStateWriter writer)
    {
        if (!_capabilities.IsEnabled(MigrationCapabilities.ReturnPath))
        {
            return;
        }

        System.IO.Stream transport = _transport!;
        if (!transport.CanRead || !transport.CanWrite)
        {
            throw new MigrationStreamException(
                "Unable to open return-path: the transport only goes one way (use tcp:, unix: or a socket passed with fd:)");
        }

        _returnPath = new ReturnPathReader(transport, _logger, failed: ShutdownTransport);
        _returnPath.Start();
        writer.WriteOpenReturnPath(ping: 1);
    }

    /// <summary>
    /// QEMU's <c>migration_can_switchover</c>: without switchover-ack, or with the VM not
    /// running, the source may switch over; otherwise only after the destination's ack.
    /// </summary>
    private bool CanSwitchover() =>
        !_capabilities.IsEnabled(MigrationCapabilities.SwitchoverAck) || !_vm.IsRunning || SwitchoverAcked;

    /// <summary>One round of <c>migration_iteration_run</c>; true when the loop should end.</summary>
    private bool IterateOnce(SaveStateWriter writer, MigrationStreamWriter stream)
    {
        long threshold = _counters.Threshold;
        ulong pending = writer.PendingEstimate().Total;
        bool canSwitchover = CanSwitchover();
        if ((pending < (ulong)threshold || threshold == 0 && pending == 0) && (canSwitchover || ExactCheckDueWhileWaiting()))
        {
            pending = writer.PendingExact().Total;
            _recorder.PendingBytes = (long)Math.Min(pending, long.MaxValue); // the pass this sync ends records it
            CheckPasses();
        }

        _recorder.PendingBytes = (long)Math.Min(pending, long.MaxValue);

        // Iterating can no longer shrink what is pending (every entry sent all it had and the
        // rest, like a device's stop-copy size, only moves at switchover): complete, whatever the
        // threshold says. Otherwise a stopped VM with such a device would iterate forever.
        // (A round that found next to nothing to send says the same: what is left is dirtied
        // faster than nothing, but sending it again cannot shrink the rest.)
        bool stuck = _lastRoundFinished && (pending == _lastPending || _lastRoundBytes < IdleRoundBytes);
        bool ready = pending <= (ulong)threshold || stuck;
        if (ready && canSwitchover)
        {
            RecordSwitchover(pending, threshold);
            Complete(writer, stream);
            return true;
        }

        if (ready && stuck)
        {
            // Everything that can go before the switchover has gone and the destination has not
            // acked yet: wait for the ack (or a dirtied page) instead of spinning.
            using (AwaitDestination())
            {
                _returnPath?.WaitForSwitchoverAck(TimeSpan.FromMilliseconds(WindowMilliseconds), _cancel.Token);
            }

            _lastPending = ulong.MaxValue;
            return false;
        }

        // With switchover-ack, QEMU 7.2's stop-at-the-first-unfinished-entry rule would starve
        // the devices whose initial data the ack waits for (RAM of a busy guest, or a running
        // device, always has more), and the source would never switch over: iterate them all.
        bool everyEntry = _capabilities.IsEnabled(MigrationCapabilities.SwitchoverAck);
        long before = stream.BytesSentInAll;
        _lastRoundFinished = writer.Iterate(everyEntry) == IterationOutcome.Finished;
        _lastRoundBytes = stream.BytesSentInAll - before;
        _windowSaturated |= !_lastRoundFinished;
        _lastPending = pending;
        return false;
    }

    /// <summary>
    /// While the destination has not acked the switchover, a sync cannot lead to it: the exact
    /// pending size (a dirty-log sync, one pass) is then taken at most once per rate window, so
    /// the RAM dirtied meanwhile still flows, instead of once per round while a device sends its
    /// initial data a chunk per round (hundreds of passes a second).
    /// </summary>
    private bool ExactCheckDueWhileWaiting()
    {
        long now = NowMs();
        if (now - _lastExactWhileWaiting < WindowMilliseconds)
        {
            return false;
        }

        _lastExactWhileWaiting = now;
        return true;
    }

    /// <summary>Keeps why the loop is about to switch over (<see cref="SwitchoverDecision"/>). Migration thread.</summary>
    private void RecordSwitchover(ulong pending, long threshold)
    {
        SwitchoverReason reason = pending == 0 ? SwitchoverReason.NothingPending
            : pending <= (ulong)threshold ? SwitchoverReason.PendingBelowThreshold
            : SwitchoverReason.IterationStalled;
        Volatile.Write(ref _switchover, new MigrationSwitchoverDecision(
            NowMs() - _startTime, reason, (int)_counters.Passes, (long)Math.Min(pending, long.MaxValue), threshold,
            Parameters.DowntimeLimit, _counters.BandwidthBytesPerSecond, _vm.CpuThrottlePercentage,
            _capabilities.IsEnabled(MigrationCapabilities.SwitchoverAck) && _vm.IsRunning));
    }

    /// <summary>
    /// The switchover, one span with a child per step: stop the VM (<c>finish-migrate</c>),
    /// optionally wait in <c>pre-switchover</c>, write the device state (END and FULL
    /// sections, EOF, vmdesc), then complete (wait for the destination's SHUT with a return path).
    /// </summary>
    private void Complete(SaveStateWriter writer, MigrationStreamWriter stream)
    {
        _recorder.EndIteration();
        _recorder.Sample(force: true);
        _recorder.Phase("switchover", "migration.switchover", () =>
        {
            using (_vm.Bql.Acquire())
            {
                _recorder.Phase("stop", "migration.switchover.stop", () =>
                {
                    _downtimeStart = NowMs();
                    _vmWasLive = _vm.IsLive;
                    _stateBeforeSwitchover = _vm.State;
                    _globalState?.Store(_vm.State);
                    VmStateChangeResult stopped = _vm.StopForceState(RunState.FinishMigrate);
                    _recorder.NoteRunState();
                    stopped.ThrowIfFailed();
                });

                if (_capabilities.IsEnabled(MigrationCapabilities.PauseBeforeSwitchover))
                {
                    _recorder.Phase("pause", "migration.switchover.pause", PauseBeforeSwitchover);
                }

                stream.RateLimitBytes = 0;
                _recorder.Phase("device_state", "migration.switchover.device_state", writer.CompletePrecopy);
            }

            _recorder.Phase("complete", "migration.switchover.complete", () =>
            {
                CheckPasses();
                if (stream.Error is { } error)
                {
                    throw error;
                }

                // QEMU's await_return_path_close_on_source: the migration only completes once the
                // destination says it loaded everything; a SHUT reporting failure fails it here, so
                // the source VM runs again.
                using (AwaitDestination())
                {
                    _returnPath?.WaitForShut(_cancel.Token);
                }

                long end = NowMs();
                Volatile.Write(ref _downtime, end - _downtimeStart);
                FinishTotals(stream, end);
                _recorder.PendingBytes = 0;
                MigrationStatus from = Status;
                if (from is MigrationStatus.Active or MigrationStatus.Device)
                {
                    SetStatus(from, MigrationStatus.Completed);
                }
            });

            if (Status == MigrationStatus.Completed)
            {
                _recorder.Downtime(_downtime);
            }
        });
    }

    private void PauseBeforeSwitchover()
    {
        if (!SetStatus(MigrationStatus.Active, MigrationStatus.PreSwitchover))
        {
            throw new OperationCanceledException("the migration was cancelled before switchover");
        }

        using (_vm.Bql.ReleaseTemporarily())
        {
            _continue.Wait(_cancel.Token);
        }

        if (!SetStatus(MigrationStatus.PreSwitchover, MigrationStatus.Device))
        {
            throw new OperationCanceledException("the migration was cancelled before switchover");
        }
    }

    private void FinishTotals(MigrationStreamWriter stream, long end)
    {
        long total = end - _startTime;
        Volatile.Write(ref _totalTime, total);
        _counters.Finish(total - Math.Max(0, _setupTime), stream.BytesSentInAll);
    }

    /// <summary>QEMU's <c>migration_detect_error</c>: true when the loop must end.</summary>
    private bool DetectError(MigrationStreamWriter stream)
    {
        MigrationStatus status = Status;
        if (status is MigrationStatus.Cancelling or MigrationStatus.Cancelled)
        {
            return true;
        }

        if (stream.Error is { } error)
        {
            Fail(error);
            return true;
        }

        if (_returnPath?.Error is { } returnPathError)
        {
            Fail(returnPathError);
            return true;
        }

        return status != MigrationStatus.Active;
    }

    /// <summary>
    /// QEMU's <c>migration_rate_limit</c>: account the window; sleep out its rest when over quota,
    /// or when <paramref name="idle"/> (the last round had nothing to send).
    /// </summary>
    private void WaitForRateWindow(MigrationStreamWriter stream, bool idle = false)
    {
        long now = NowMs();
        UpdateCounters(stream, now);
        if (!(stream.IsRateLimited || idle) || stream.HasError)
        {
            return;
        }

        long wait = _counters.WindowEnd - now;
        if (wait > 0)
        {
            _cancel.Token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(wait));
        }
    }

    /// <summary>QEMU's <c>migration_update_counters</c>: at the end of a rate window, the counters and a timeline sample.</summary>
    private void UpdateCounters(MigrationStreamWriter stream, long now)
    {
        MigrationParameters parameters = Parameters;
        bool saturated = _windowSaturated || stream.IsRateLimited;
        // Multifd channels' bytes count as QEMU 7.2 counts them: in the bandwidth, so in the threshold.
        if (!_counters.Update(now, stream.BytesSentInAll, _ram?.Snapshot(), parameters.DowntimeLimit, saturated, parameters.AvailSwitchoverBandwidth))
        {
            return;
        }

        _windowSaturated = false;
        stream.StartNewRateWindow();
        _recorder.Sample();
    }

    /// <summary>Auto-converge: asks <see cref="AutoConvergePolicy"/> at a dirty sync and applies a new vCPU throttle.</summary>
    private void CheckAutoConverge(RamTransferStats ram, MigrationStreamWriter? stream)
    {
        if (!_capabilities.IsEnabled(MigrationCapabilities.AutoConverge) || stream is null)
        {
            return;
        }

        long now = NowMs();
        if (_autoConverge.OnSync(now, ram.PagesDirtied, stream.BytesSentInAll, _vm.CpuThrottlePercentage, Parameters) is { } next)
        {
            _vm.CpuThrottlePercentage = next;
            _recorder.AddEvent(MigrationTimelineEventKind.Throttle, next.ToString(System.Globalization.CultureInfo.InvariantCulture));
            LogThrottle(next);
        }
    }

    private void CheckPasses()
    {
        if (_ram is null)
        {
            return;
        }

        RamTransferStats snapshot = _ram.Snapshot();
        CheckAutoConverge(snapshot, _stream);
        long syncs = snapshot.DirtySyncCount;
        long before = _counters.Passes;
        while (_counters.Passes < syncs)
        {
            long pass = _counters.AddPass();
            if (_capabilities.IsEnabled(MigrationCapabilities.Events))
            {
                _vm.Events.Emit("MIGRATION_PASS", new() { ["pass"] = pass });
            }
        }

        long passes = _counters.Passes;
        if (passes > before)
        {
            _recorder.PassesCounted(passes - before);
        }
    }

    private void Fail(Exception error)
    {
        MigrationStatus status = Status;
        if (status is MigrationStatus.Cancelling or MigrationStatus.Cancelled || _cancel.IsCancellationRequested)
        {
            return;
        }

        if (error is not ReturnPathException && _returnPath is { } returnPath)
        {
            // A destination that fails sends SHUT 1 and closes the connection, which may break a
            // write before the reader has seen the SHUT: give the reader a moment, because the
            // destination's failure, not the write it broke, is the cause worth reporting.
            returnPath.Finished.Wait(TimeSpan.FromSeconds(2));
            if (returnPath.Error is { } returnPathError)
            {
                error = returnPathError;
            }
        }

        if (_multifd?.Error is { } channelError)
        {
            // The channel's failure broke the main connection: it is the cause worth reporting.
            error = channelError;
        }

        _error ??= error;
        LogFailed(error, error.Message);
        while (true)
        {
            status = Status;
            if (status.IsFinished() || status == MigrationStatus.Cancelling || SetStatus(status, MigrationStatus.Failed))
            {
                break;
            }
        }
    }

    private void FinishAndCleanUp(SaveStateWriter? writer)
    {
        Activity? cleanup = _recorder.StartPhase("cleanup", "migration.cleanup");
        try
        {
            using (_vm.Bql.Acquire())
            {
                _vm.CpuThrottlePercentage = 0;
                RestoreRunState();
                _recorder.NoteRunState();
                writer?.Cleanup();
            }
        }
        catch (Exception error)
        {
            MigrationTelemetry.SetError(cleanup, error);
            Fail(error);
        }
        finally
        {
            CloseTransport();
            if (Status == MigrationStatus.Cancelling)
            {
                SetStatus(MigrationStatus.Cancelling, MigrationStatus.Cancelled);
            }

            if (_totalTime < 0)
            {
                Volatile.Write(ref _totalTime, NowMs() - _startTime);
            }

            cleanup?.Stop();
            _recorder.Sample(force: true);
            _recorder.Finish(Volatile.Read(ref _totalTime), _downtime);
            StopStallWatchdog();
            _finished.TrySetResult();
        }
    }

    /// <summary>QEMU's <c>migration_iteration_finish</c>: where the source VM goes after the loop.</summary>
    private void RestoreRunState()
    {
        if (Status == MigrationStatus.Completed)
        {
            _vm.SetRunState(RunState.PostMigrate);
            return;
        }

        if (_vmWasLive && _vm.State != RunState.Shutdown)
        {
            VmStateChangeResult started = _vm.Start();
            if (started.Refusal is { } refusal)
            {
                LogRestartRefused(refusal);
            }
            else if (!started.Succeeded)
            {
                LogRestartFailed(started.Failures.Count);
            }
        }
        else if (_vm.State == RunState.FinishMigrate)
        {
            _vm.SetRunState(_stateBeforeSwitchover ?? RunState.PostMigrate);
        }
    }

    private void ShutdownTransport()
    {
        TransportShutdown.Shutdown(_transport);
        _multifd?.Shutdown();
    }

    private void CloseTransport()
    {
        // After a completed migration every channel has written its last SYNC: nothing is lost.
        _multifd?.Dispose();

        MigrationStreamWriter? stream = _stream;
        if (stream is not null && !stream.HasError)
        {
            try
            {
                stream.Flush();
            }
            catch (Exception error)
            {
                Fail(error);
            }
        }

        try
        {
            stream?.Dispose();
        }
        catch (Exception)
        {
            // The error, if it matters, is already recorded.
        }

        if (_returnPath is { Finished.IsCompleted: false })
        {
            // Wake the reader thread out of its read before joining it.
            ShutdownTransport();
        }

        try
        {
            _transport?.Dispose();
        }
        catch (Exception error)
        {
            if (Status != MigrationStatus.Completed)
            {
                Fail(error);
            }
        }

        _returnPath?.Dispose();
    }

    private bool SetStatus(MigrationStatus from, MigrationStatus to)
    {
        if (Interlocked.CompareExchange(ref _status, (int)to, (int)from) != (int)from)
        {
            return false;
        }

        LogStatus(from.ToQapiName(), to.ToQapiName());
        _recorder.AddEvent(MigrationTimelineEventKind.Status, to.ToQapiName(), to == MigrationStatus.Failed ? _error?.Message : null);
        if (_capabilities.IsEnabled(MigrationCapabilities.Events))
        {
            _vm.Events.Emit("MIGRATION", new() { ["status"] = to.ToQapiName() });
        }

        return true;
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Cancel();
        _thread?.Join();
        _recorder.Dispose();
        _cancel.Dispose();
        _continue.Dispose();
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Information, Message = "outgoing migration: TLS session established ({Protocol}, {CipherSuite})")]
    private partial void LogTlsEstablished(string protocol, string cipherSuite);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "migration status {From} -> {To}")]
    private partial void LogStatus(string from, string to);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "migration failed: {Reason}")]
    private partial void LogFailed(Exception error, string reason);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Information, Message = "auto-converge: vCPU throttle now {Percent}%")]
    private partial void LogThrottle(int percent);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Error, Message = "restarting the source VM after the failed migration: {Count} handler(s) failed")]
    private partial void LogRestartFailed(int count);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Error, Message = "the source VM cannot run again after the failed migration: {Reason}")]
    private partial void LogRestartRefused(string reason);
}
