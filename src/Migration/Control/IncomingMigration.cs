using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Multifd;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.Transport;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Control;

/// <summary>
/// The destination side of one migration (QEMU's incoming coroutine): waits for the stream,
/// loads it with the big lock held (released while waiting for bytes), then puts the VM in
/// the run state the stream carried in <c>globalstate</c> — started if that was running and
/// autostart is on (no <c>-S</c>), paused with <c>-S</c>. A failure leaves the status
/// <c>failed</c> with the error; the host decides whether the process exits (QEMU 7.2 does).
/// With a <see cref="MigrationTelemetry"/> it counts the bytes it loads by section kind and
/// traces the load and the start.
/// </summary>
public sealed partial class IncomingMigration : IDisposable
{
    private readonly SaveStateRegistry _registry;
    private readonly VirtualMachine _vm;
    private readonly SavevmOptions _options;
    private readonly GlobalState? _globalState;
    private readonly IRamTransferStatistics? _ram;
    private readonly Func<MigrationCapabilities> _capabilities;
    private readonly ILogger _logger;
    private readonly MigrationTelemetry? _telemetry;
    private readonly SectionByteCounts _bytes;
    private readonly CancellationTokenSource _cancel = new();
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _startTime;
    private int _status = (int)MigrationStatus.None;
    private volatile Exception? _error;
    private volatile MigrationStreamReader? _reader;
    private volatile IncomingLoadState? _loadState;
    private System.IO.Stream? _transport;
    private volatile MultifdReceiver? _multifd;
    private Thread? _thread;
    private long _totalTime = -1;
    private long _lastProgressAt;
    private long _lastOffset;
    private int _disposed;

    /// <summary>Creates the destination side for <paramref name="vm"/>, which should be in <c>inmigrate</c>.</summary>
    public IncomingMigration(
        SaveStateRegistry registry,
        VirtualMachine vm,
        SavevmOptions options,
        Func<MigrationCapabilities> capabilities,
        GlobalState? globalState = null,
        IRamTransferStatistics? ram = null,
        ILogger? logger = null,
        MigrationTelemetry? telemetry = null)
    {
        _registry = registry;
        _vm = vm;
        _options = options;
        _capabilities = capabilities;
        _globalState = globalState;
        _ram = ram;
        _logger = logger ?? NullLogger.Instance;
        _telemetry = telemetry;
        _bytes = new SectionByteCounts(telemetry is null ? null : telemetry.SectionBytesLoaded);
        _startTime = NowMs();
        _lastProgressAt = _startTime;
    }

    /// <summary>The current status: none until the stream starts arriving, then active, then completed or failed.</summary>
    public MigrationStatus Status => (MigrationStatus)Volatile.Read(ref _status);

    /// <summary>Why the load failed, once it has.</summary>
    public Exception? Error => _error;

    /// <summary>Completes when the load has finished, one way or the other.</summary>
    public Task Finished => _finished.Task;

    /// <summary>
    /// Runs on the accepted connection before the load (the TLS handshake when <c>tls-creds</c>
    /// is set, read when the source connects, as QEMU does); returns the stream to load from.
    /// </summary>
    public Func<System.IO.Stream, CancellationToken, System.IO.Stream>? SecureTransport { get; init; }

    /// <summary>
    /// Runs on the incoming thread right after the source connected, before the load: what was
    /// using the wait (the background RAM prefault) gives way to the loader. Big lock not held.
    /// </summary>
    public Action? StreamArriving { get; init; }

    /// <summary><c>multifd-channels</c> when the multifd channels arrive (QEMU's default 2 when not set).</summary>
    public Func<int>? MultifdChannels { get; init; }

    /// <summary>Stream bytes consumed so far.</summary>
    public long BytesReceived => _reader?.Offset ?? 0;

    /// <summary>Stream bytes loaded so far by section kind (<see cref="SectionBytes.Total"/> is the stream read). Any thread.</summary>
    public SectionBytes BytesLoaded => _bytes.Snapshot();

    /// <summary>
    /// Starts the incoming thread: <paramref name="listener"/> accepts the stream (the
    /// <c>setup</c> event is sent as listening starts, as QEMU 7.2 does), then the load runs.
    /// </summary>
    public void Start(IncomingListener listener)
    {
        if (_thread is not null)
        {
            throw new InvalidOperationException("the incoming migration already started");
        }

        EmitStatus(MigrationStatus.Setup);
        _thread = new Thread(() => Run(listener)) { Name = "incoming_migration", IsBackground = true };
        _thread.Start();
    }

    /// <summary>
    /// One device's approval of the switchover (VFIO's <c>INIT_DATA_SENT</c>); the last one
    /// sends SWITCHOVER_ACK to the source. Loading thread, big lock held.
    /// </summary>
    /// <exception cref="InvalidOperationException">No load is running, or no approval was outstanding.</exception>
    public void ApproveSwitchover() =>
        (_loadState ?? throw new InvalidOperationException("a switchover approval arrived but no incoming load is running"))
            .ApproveSwitchover();

    /// <summary>Whether SWITCHOVER_ACK has been sent to the source.</summary>
    public bool SwitchoverAcked => _loadState?.SwitchoverAcked ?? false;

    /// <summary>A snapshot for <c>query-migrate</c> on the destination, with progress while loading.</summary>
    public MigrationInfo Snapshot()
    {
        MigrationStatus status = Status;
        long now = NowMs();
        long offset = BytesReceived;
        if (offset != _lastOffset)
        {
            _lastOffset = offset;
            _lastProgressAt = now;
        }

        return status switch
        {
            MigrationStatus.None => MigrationInfo.NotStarted,
            MigrationStatus.Failed => new MigrationInfo(status, ErrorDescription: _error?.Message),
            MigrationStatus.Completed => new MigrationInfo(status, TotalTime: _totalTime, Ram: _ram?.Snapshot()),
            _ => new MigrationInfo(status, TotalTime: now - _startTime, Ram: _ram?.Snapshot()) with
            {
                ErrorDescription = now - _lastProgressAt > 10_000
                    ? $"no data from the source for {(now - _lastProgressAt) / 1000} s ({offset} bytes received)"
                    : null,
            },
        };
    }

    private void Run(IncomingListener listener)
    {
        // Spans, innermost last: they end in reverse order, also on failure.
        Activity? root = null;
        Activity? load = null;
        Activity? deviceState = null;
        Activity? section = null;
        Activity? start = null;
        try
        {
            _transport = listener.Accept(_cancel.Token);
            StartStallWatchdog();
            StreamArriving?.Invoke();
            root = _telemetry?.StartActivity("migration.incoming");
            if (SecureTransport is { } secure)
            {
                _transport = secure(_transport, _cancel.Token);
                if (_transport is MiniVmm.Migration.Transport.Tls.TlsTransportStream tls)
                {
                    LogTlsEstablished(tls.Protocol.ToString(), tls.CipherSuite.ToString());
                }
            }

            AcceptMultifd(listener);
            using BigLock.Scope _ = _vm.Bql.Acquire();
            SetStatus(MigrationStatus.None, MigrationStatus.Active);
            _globalState?.ResetReceived();
            using var reader = new MigrationStreamReader(new BigLockYieldingStream(_transport, _vm.Bql, leaveOpen: true));
            _reader = reader;
            var loadState = new IncomingLoadState(
                _transport.CanWrite ? _transport : null, _capabilities().IsEnabled(MigrationCapabilities.SwitchoverAck));
            _loadState = loadState;
            var loader = new SaveStateLoader(_registry, _options, _vm.Bql, _logger, _bytes);
            if (_telemetry is { } telemetry)
            {
                // The switchover's part of the stream (END and FULL sections, one span each, a
                // handful): START and PART sections are too many for a span each.
                loader.SectionStarting += (entry, type) =>
                {
                    if (type is SectionType.End or SectionType.Full)
                    {
                        deviceState ??= telemetry.StartActivity("migration.incoming.device_state");
                        section = telemetry.StartActivity("migration.incoming.section");
                        section?.SetTag(MigrationTelemetry.SectionKindTag, entry.Kind.ToTagValue());
                        section?.SetTag("migration.section.name", entry.IdStr);
                        section?.SetTag("migration.section.type", type == SectionType.End ? "end" : "full");
                    }
                };
                loader.SectionLoaded += (_, _, bytes) =>
                {
                    section?.SetTag("migration.section.bytes", bytes);
                    section?.Stop();
                    section = null;
                };
            }

            load = _telemetry?.StartActivity("migration.incoming.load");
            LoadResult result = loader.Load(reader, loadState);
            deviceState?.Stop();
            deviceState = null;
            load?.SetTag("migration.bytes_loaded", result.BytesRead);
            load?.SetTag("migration.sections", result.Sections);
            load?.Stop();
            load = null;
            LogLoaded(result.BytesRead, result.Sections);
            start = _telemetry?.StartActivity("migration.incoming.start");
            EnterReceivedRunState();
            start?.SetTag("migration.run_state", _vm.State.ToQapiName());
            start?.Stop();
            start = null;
            _totalTime = NowMs() - _startTime;
            SetStatus(MigrationStatus.Active, MigrationStatus.Completed);
            loadState.Shut(failed: false);
        }
        catch (Exception caught)
        {
            Exception error = ReasonFor(caught);
            if (_transport is MiniVmm.Migration.Transport.Tls.TlsTransportStream && BytesReceived == 0
                && error is MigrationLoadException or MigrationStreamException)
            {
                // Under TLS 1.3 the source checks this side's certificate after the server's handshake has returned.
                error = new MiniVmm.Migration.Transport.Tls.TlsHandshakeException(
                    $"the source on {listener.Uri} closed the TLS session right after the handshake, before the stream began: "
                    + $"it probably refused this side's certificate (its error names the reason); {error.Message}",
                    error);
            }

            if (_multifd?.Error is { } channelError)
            {
                // The channel's failure shut the main connection: it is the cause worth reporting.
                error = channelError;
            }

            _error = error;
            LogFailed(error, error.Message);
            foreach (Activity? open in new[] { start, section, deviceState, load })
            {
                MigrationTelemetry.SetError(open, error);
                open?.Stop();
            }

            if (!SetStatus(MigrationStatus.Active, MigrationStatus.Failed))
            {
                SetStatus(MigrationStatus.None, MigrationStatus.Failed);
            }

            _loadState?.Shut(failed: true);
        }
        finally
        {
            StopStallWatchdog();
            if (_transport is not null)
            {
                // A migration whose stream began to arrive (not a listener closed while waiting).
                _telemetry?.IncomingFinished(Status);
            }

            if (root is not null)
            {
                root.SetTag(MigrationTelemetry.StatusTag, Status.ToQapiName());
                root.SetTag("migration.bytes_loaded", _bytes.Snapshot().Total);
                if (Status == MigrationStatus.Completed)
                {
                    root.SetStatus(ActivityStatusCode.Ok);
                }
                else if (_error is { } error)
                {
                    MigrationTelemetry.SetError(root, error);
                }

                root.Stop();
            }

            _loadState?.Dispose();
            if (_multifd is { } multifd)
            {
                RamMigrationHandler.Find(_registry)?.AttachMultifd((MultifdReceiver?)null);
                multifd.Dispose();
            }

            try
            {
                _transport?.Dispose();
            }
            catch (Exception error) when (error is IOException or ObjectDisposedException)
            {
                // The stream is loaded (or the load failed already): nothing more to learn from it.
            }

            listener.Dispose();
            _finished.TrySetResult();
        }
    }

    /// <summary>
    /// With the <c>multifd</c> capability: accepts the channels that follow the main connection
    /// (TLS on each when set) before the load starts, as QEMU 7.2 does, and gives them to the
    /// RAM handler. A failing channel shuts the main connection so the load stops with its error.
    /// Incoming thread, big lock not held.
    /// </summary>
    private void AcceptMultifd(IncomingListener listener)
    {
        if (!_capabilities().IsEnabled(MigrationCapabilities.Multifd))
        {
            return;
        }

        if (!listener.AcceptsMoreConnections)
        {
            throw new MigrationStreamException("multifd is not supported by current protocol");
        }

        RamMigrationHandler ram = RamMigrationHandler.Find(_registry)
            ?? throw new MigrationStreamException("multifd: no RAM to receive into");
        _multifd = MultifdReceiver.Accept(
            MultifdChannels?.Invoke() ?? 2,
            cancel =>
            {
                System.IO.Stream channel = listener.Accept(cancel);
                return SecureTransport is { } secure ? secure(channel, cancel) : channel;
            },
            ram.Memory,
            _cancel.Token,
            _logger,
            failed: _ => MiniVmm.Migration.Transport.TransportShutdown.Shutdown(_transport));
        ram.AttachMultifd(_multifd);
    }

    /// <summary>QEMU's destination run-state decision after a successful load. Big lock held.</summary>
    private void EnterReceivedRunState()
    {
        RunState? received = _globalState?.ReceivedState;
        if (received is null or RunState.Running)
        {
            if (_vm.Autostart)
            {
                _vm.Start().ThrowIfFailed();
            }
            else
            {
                _vm.SetRunState(RunState.Paused);
            }
        }
        else
        {
            _vm.SetRunState(received.Value);
        }
    }

    private bool SetStatus(MigrationStatus from, MigrationStatus to)
    {
        if (Interlocked.CompareExchange(ref _status, (int)to, (int)from) != (int)from)
        {
            return false;
        }

        EmitStatus(to);
        return true;
    }

    private void EmitStatus(MigrationStatus status)
    {
        if (_capabilities().IsEnabled(MigrationCapabilities.Events))
        {
            _vm.Events.Emit("MIGRATION", new() { ["status"] = status.ToQapiName() });
        }
    }

    private long NowMs() => _vm.Time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _cancel.Cancel();
        _multifd?.Shutdown();
        try
        {
            _transport?.Dispose();
        }
        catch (Exception error) when (error is IOException or ObjectDisposedException)
        {
            // Closing only to wake the loader.
        }

        if (_thread is { } thread && thread != Thread.CurrentThread)
        {
            thread.Join();
        }

        _cancel.Dispose();
    }

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "incoming migration: TLS session established ({Protocol}, {CipherSuite})")]
    private partial void LogTlsEstablished(string protocol, string cipherSuite);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "incoming migration loaded {Bytes} bytes in {Sections} sections")]
    private partial void LogLoaded(long bytes, int sections);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Error, Message = "load of migration failed: {Reason}")]
    private partial void LogFailed(Exception error, string reason);
}
