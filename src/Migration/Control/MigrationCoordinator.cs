using System.Collections.Immutable;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Transport;
using MiniVmm.Migration.Transport.Tls;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Control;

/// <summary>
/// The VM's migration state (QEMU's <c>MigrationState</c> object): parameters and
/// capabilities, blockers, the current outgoing session and the incoming side. QMP commands
/// call it with the big lock held.
/// </summary>
public sealed class MigrationCoordinator : ISwitchoverAck, IMigrationActivityNotes, IDisposable
{
    /// <summary>How long a command waits for an ended migration's cleanup before it is refused as in progress.</summary>
    private static readonly TimeSpan EndedCleanupWait = TimeSpan.FromSeconds(10);

    private readonly SaveStateRegistry _registry;
    private readonly VirtualMachine _vm;
    private readonly SavevmOptions _options;
    private readonly GlobalState? _globalState;
    private readonly IRamTransferStatistics? _ram;
    private readonly ILoggerFactory _loggers;
    private readonly bool _ownsTelemetry;
    private readonly object _gate = new();
    private ImmutableList<string> _blockers = [];
    private MigrationParameters _parameters = new();
    private MigrationCapabilities _capabilities = MigrationCapabilities.None;
    private MigrationSession? _outgoing;
    private IncomingMigration? _incoming;
    private readonly TaskCompletionSource<IncomingMigration> _incomingStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    /// <summary>Creates the coordinator.</summary>
    /// <param name="registry">The VM's savevm entries.</param>
    /// <param name="vm">The VM.</param>
    /// <param name="options">The wire format.</param>
    /// <param name="globalState">The <c>globalstate</c> section, if the machine has one.</param>
    /// <param name="ram">Where RAM statistics come from, if the machine has RAM.</param>
    /// <param name="loggers">Where sessions log.</param>
    /// <param name="telemetry">
    /// The metrics and traces migrations feed (from the service container); when null the
    /// coordinator makes its own and disposes it with itself.
    /// </param>
    public MigrationCoordinator(
        SaveStateRegistry registry,
        VirtualMachine vm,
        SavevmOptions options,
        GlobalState? globalState = null,
        IRamTransferStatistics? ram = null,
        ILoggerFactory? loggers = null,
        MigrationTelemetry? telemetry = null)
    {
        _registry = registry;
        _vm = vm;
        _options = options;
        _globalState = globalState;
        _ram = ram;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        _ownsTelemetry = telemetry is null;
        Telemetry = telemetry ?? new MigrationTelemetry();
    }

    /// <summary>The meter and activity source this VM's migrations feed.</summary>
    public MigrationTelemetry Telemetry { get; }

    /// <summary>The parameters the next (and the current) migration uses.</summary>
    public MigrationParameters Parameters => Volatile.Read(ref _parameters);

    /// <summary>The capabilities the next migration uses.</summary>
    public MigrationCapabilities Capabilities => Volatile.Read(ref _capabilities);

    /// <summary>The latest outgoing migration, running or finished.</summary>
    public MigrationSession? Outgoing => _outgoing;

    /// <summary>The incoming migration, once one was started.</summary>
    public IncomingMigration? Incoming => _incoming;

    /// <summary>Completes when an incoming migration starts (from <c>-incoming</c> or <c>migrate-incoming</c>).</summary>
    public Task<IncomingMigration> IncomingStarted => _incomingStarted.Task;

    /// <summary>Resolves <c>fd:NAME</c> URIs (set by the host's <c>getfd</c> support).</summary>
    public Func<string, System.IO.Stream>? PassedDescriptors { get; set; }

    /// <summary>The waiting destination's background RAM prefault, stopped when an incoming stream arrives; null for none.</summary>
    public IncomingRamPrefault? IncomingPrefault { get; init; }

    /// <summary>
    /// Resolves the <c>tls-creds</c> parameter to a <c>tls-creds-x509</c> object by id (set by
    /// the host's <c>-object</c> and <c>object-add</c> support); null when none has the id.
    /// </summary>
    public Func<string, TlsCredentialsX509?>? TlsCredentials { get; set; }

    /// <inheritdoc />
    bool ISwitchoverAck.IsEnabled => Capabilities.IsEnabled(MigrationCapabilities.SwitchoverAck);

    /// <inheritdoc />
    void ISwitchoverAck.ApproveSwitchover() =>
        (_incoming ?? throw new InvalidOperationException("a switchover approval arrived but no incoming migration runs"))
            .ApproveSwitchover();

    /// <inheritdoc />
    /// <remarks>Goes to the outgoing migration while it runs.</remarks>
    public void Note(string name, string? detail = null)
    {
        if (_outgoing is { } outgoing && !outgoing.Finished.IsCompleted)
        {
            outgoing.NoteActivity(name, detail);
        }
    }

    /// <summary>Whether an outgoing or incoming migration is under way.</summary>
    /// <remarks>An outgoing session counts until its thread has cleaned up, not just until its status is final.</remarks>
    public bool IsRunning =>
        (_outgoing is { } outgoing && !outgoing.Finished.IsCompleted)
        || (_incoming is { } incoming && !incoming.Finished.IsCompleted);

    /// <summary>
    /// Fails the outgoing migration, if one runs, with <paramref name="reason"/> (something the
    /// VM cannot run without went away, like its guest harness). Any thread.
    /// </summary>
    public void FailOutgoing(Exception reason) => _outgoing?.Abort(reason);

    /// <summary>Adds a reason that blocks migration until the result is disposed (QEMU's migration blockers).</summary>
    public IDisposable AddBlocker(string reason)
    {
        ImmutableInterlocked.Update(ref _blockers, list => list.Add(reason));
        return new Blocker(this, reason);
    }

    /// <summary>Why a migration would be refused now: unmigratable devices, then blockers (<c>blocked-reasons</c>).</summary>
    public IReadOnlyList<string> BlockedReasons =>
        _registry.Entries.Where(e => e.Vmsd is { Unmigratable: true }).Select(e => $"non-migratable device: {e.IdStr}")
            .Concat(_blockers).ToList();

    /// <summary>QMP <c>migrate-set-parameters</c>: applies all or nothing; the running migration sees the change.</summary>
    public void SetParameters(JsonObject changes)
    {
        lock (_gate)
        {
            MigrationParameters updated = MigrationParameterNames.Apply(Parameters, changes);
            Volatile.Write(ref _parameters, updated);
            _outgoing?.UpdateParameters(updated);
        }
    }

    /// <summary>
    /// QMP <c>migrate-set-capabilities</c>; refused while an outgoing migration runs. As in
    /// QEMU, a destination may still set them while it listens: the incoming side reads them
    /// when the stream arrives.
    /// </summary>
    public void SetCapabilities(IEnumerable<(string Name, bool State)> changes)
    {
        AwaitEndedOutgoing();
        lock (_gate)
        {
            if (_outgoing is { } outgoing && !outgoing.Finished.IsCompleted)
            {
                throw new MigrationBlockedException("There's a migration process in progress");
            }

            MigrationCapabilities updated = Capabilities;
            foreach ((string name, bool state) in changes)
            {
                updated = updated.With(name, state);
            }

            updated.Validate();
            Volatile.Write(ref _capabilities, updated);
        }
    }

    /// <summary>
    /// QMP <c>migrate</c>: QEMU's checks in order (migration running, waiting for an incoming
    /// migration, already migrated, blockers, save_prepare), then a new session whose thread
    /// connects to <paramref name="uri"/> and runs. Big lock held.
    /// </summary>
    public MigrationSession StartOutgoing(string uri)
    {
        _vm.Bql.AssertHeld();
        AwaitEndedOutgoing();
        lock (_gate)
        {
            if (IsRunning)
            {
                throw new MigrationBlockedException("There's a migration process in progress");
            }

            if (_vm.State == RunState.InMigrate)
            {
                throw new MigrationBlockedException("Guest is waiting for an incoming migration");
            }

            if (_vm.State == RunState.PostMigrate)
            {
                throw new MigrationBlockedException("Can't migrate the vm that was paused due to previous migration");
            }

            foreach (SaveStateEntry entry in _registry.Entries)
            {
                if (entry.Vmsd is { Unmigratable: true })
                {
                    throw new MigrationBlockedException($"State blocked by non-migratable device '{entry.IdStr}'");
                }
            }

            if (_blockers.Count > 0)
            {
                throw new MigrationBlockedException(_blockers[0]);
            }

            MigrationUri parsed = MigrationUri.Parse(uri);
            foreach (SaveStateEntry entry in _registry.Entries)
            {
                if (entry.Handlers is { } handlers && entry.IsActive())
                {
                    try
                    {
                        handlers.SavePrepare();
                    }
                    catch (Exception error)
                    {
                        throw new MigrationBlockedException($"{entry.IdStr}: {error.Message}", error);
                    }
                }
            }

            MigrationParameters parameters = Parameters;
            var session = new MigrationSession(
                _registry, _vm, _options, parameters, Capabilities, _globalState, _ram, _loggers.CreateLogger<MigrationSession>(),
                Telemetry);
            _outgoing = session;
            Func<string, System.IO.Stream>? descriptors = PassedDescriptors;
            Func<string, TlsCredentialsX509?>? credentials = TlsCredentials;
            Func<CancellationToken, System.IO.Stream> connect = cancel => ConnectOutgoing(parsed, parameters, descriptors, credentials, cancel);
            session.Start(connect, parsed.Scheme is MigrationScheme.Tcp or MigrationScheme.Unix ? connect : null);
            return session;
        }
    }

    /// <summary>
    /// The source's connection (migration thread): the transport, then, with <c>tls-creds</c>,
    /// the TLS handshake as client. As in QEMU, a TLS problem fails the migration (status
    /// <c>failed</c> with the reason), it does not refuse the command.
    /// </summary>
    private static System.IO.Stream ConnectOutgoing(
        MigrationUri uri,
        MigrationParameters parameters,
        Func<string, System.IO.Stream>? descriptors,
        Func<string, TlsCredentialsX509?>? credentials,
        CancellationToken cancel)
    {
        if (!parameters.UsesTls)
        {
            return OutgoingTransport.Connect(uri, descriptors, cancel);
        }

        RefuseTlsOver(uri);
        TlsCredentialsX509 creds = ResolveCredentials(parameters, credentials, TlsEndpoint.Client);
        string hostname = parameters.TlsHostname.Length > 0
            ? parameters.TlsHostname
            : uri.Scheme == MigrationScheme.Tcp && !string.IsNullOrEmpty(uri.Host)
                ? uri.Host
                : throw new TlsCredentialsException("No hostname available for TLS");
        System.IO.Stream connection = OutgoingTransport.Connect(uri, descriptors, cancel);
        return MigrationTls.Client(connection, creds, hostname, uri.Scheme == MigrationScheme.Tcp ? uri.Target : uri.ToString(), cancel);
    }

    /// <summary>The destination's side of TLS, once the source has connected (incoming thread).</summary>
    private System.IO.Stream SecureIncoming(MigrationUri uri, System.IO.Stream connection, CancellationToken cancel)
    {
        MigrationParameters parameters = Parameters;
        if (!parameters.UsesTls)
        {
            return connection;
        }

        try
        {
            RefuseTlsOver(uri);
            TlsCredentialsX509 creds = ResolveCredentials(parameters, TlsCredentials, TlsEndpoint.Server);
            return MigrationTls.Server(
                connection, creds, $"the source on {uri}", Capabilities.IsEnabled(MigrationCapabilities.ReturnPath), cancel);
        }
        catch (TlsCredentialsException)
        {
            connection.Dispose();
            throw;
        }
    }

    private static void RefuseTlsOver(MigrationUri uri)
    {
        if (uri.Scheme is MigrationScheme.Exec or MigrationScheme.File)
        {
            throw new TlsCredentialsException(
                $"TLS is not supported over {uri.Scheme.ToString().ToLowerInvariant()}: migrations (tls-creds is set): use tcp:, unix: or fd:, or clear tls-creds");
        }
    }

    private static TlsCredentialsX509 ResolveCredentials(
        MigrationParameters parameters, Func<string, TlsCredentialsX509?>? credentials, TlsEndpoint endpoint)
    {
        TlsCredentialsX509 creds = credentials?.Invoke(parameters.TlsCreds)
            ?? throw new TlsCredentialsException($"No TLS credentials with id '{parameters.TlsCreds}'");
        creds.CheckEndpoint(endpoint);
        return creds;
    }

    /// <summary>
    /// <c>-incoming URI</c> or QMP <c>migrate-incoming</c>: starts listening at once and loads
    /// the stream on its own thread. The VM must be in <c>inmigrate</c>. Big lock held.
    /// </summary>
    public IncomingMigration StartIncoming(string uri)
    {
        lock (_gate)
        {
            if (_incoming is not null)
            {
                throw new MigrationBlockedException("The incoming migration has already been started");
            }

            if (_vm.State != RunState.InMigrate)
            {
                throw new MigrationBlockedException("'-incoming' was not specified on the command line");
            }

            MigrationUri parsed = MigrationUri.Parse(uri);
            IncomingListener listener = IncomingListener.Listen(parsed, PassedDescriptors);
            var incoming = new IncomingMigration(
                _registry, _vm, _options, () => Capabilities, _globalState, _ram, _loggers.CreateLogger<IncomingMigration>(),
                Telemetry)
            {
                SecureTransport = (connection, cancel) => SecureIncoming(parsed, connection, cancel),
                StreamArriving = IncomingPrefault is { } prefault ? prefault.Yield : null,
                MultifdChannels = () => (int)Parameters.MultifdChannels,
                StallTimeoutMilliseconds = () => Parameters.XStallTimeout,
            };
            _incoming = incoming;
            incoming.Start(listener);
            _incomingStarted.TrySetResult(incoming);
            return incoming;
        }
    }

    /// <summary>
    /// When the last outgoing migration already reports its end (completed, failed, cancelled)
    /// but its thread is still cleaning up (the source restarting, an exec child exiting), waits
    /// for the cleanup — with the big lock released, since the cleanup takes it — so that a
    /// command a client sends right after seeing the end is not refused as "in progress".
    /// Called before <c>_gate</c> is taken: another thread may hold the big lock and wait for it.
    /// </summary>
    private void AwaitEndedOutgoing()
    {
        if (_outgoing is not { } outgoing || outgoing.Finished.IsCompleted || !outgoing.Status.IsFinished())
        {
            return;
        }

        if (_vm.Bql.IsHeld)
        {
            using (_vm.Bql.ReleaseTemporarily())
            {
                outgoing.Finished.Wait(EndedCleanupWait);
            }
        }
        else
        {
            outgoing.Finished.Wait(EndedCleanupWait);
        }
    }

    /// <summary>QMP <c>migrate_cancel</c>: cancels a running outgoing migration; does nothing otherwise (as 7.2).</summary>
    public void Cancel() => _outgoing?.Cancel();

    /// <summary>QMP <c>query-migrate</c>: the outgoing migration if there was one, else the incoming one.</summary>
    public MigrationInfo Query()
    {
        if (_outgoing is { } outgoing)
        {
            return outgoing.Snapshot();
        }

        return _incoming?.Snapshot() ?? MigrationInfo.NotStarted;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _incoming?.Dispose();
        _outgoing?.Dispose();
        if (_ownsTelemetry)
        {
            Telemetry.Dispose();
        }
    }

    private sealed class Blocker(MigrationCoordinator owner, string reason) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                ImmutableInterlocked.Update(ref owner._blockers, list => list.Remove(reason));
            }
        }
    }
}
