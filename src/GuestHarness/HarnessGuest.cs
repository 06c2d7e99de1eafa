using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MiniVmm.GuestHarness.Connection;
using MiniVmm.GuestHarness.Protocol;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.GuestHarness;

/// <summary>
/// <c>-guest harness</c>: a guest that runs in another process (the harness) on this VM's RAM.
/// MiniVmm listens for one harness, hands it the RAM and dirty-log memfds, and couples it to the
/// run state: every stop sends PAUSE and returns only after the reply (so a dirty sync after a
/// stop sees every write), every start sends RUN, a start without a harness waits for one up to
/// the connect timeout, and a harness that disconnects while the VM runs stops the VM in
/// <c>internal-error</c> and fails a migration in progress. A harness that announced STATE has
/// its state migrated in the <c>x-guest-harness</c> section.
/// </summary>
/// <remarks>
/// Locks: the change-state handler, the start check and the section callbacks run with the big
/// lock held and wait for replies; replies arrive on each channel's reader thread, which never
/// takes the big lock. A new connection finishes its handshake without the big lock and is then
/// published under it, by whichever comes first: its own accept thread or a start waiting for it.
/// </remarks>
public sealed partial class HarnessGuest : ISaveStateDevice, IDisposable
{
    private readonly HarnessGuestOptions _options;
    private readonly GuestMemory _memory;
    private readonly VirtualMachine _vm;
    private readonly Action<Exception> _failMigration;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly HarnessListener _listener;
    private readonly IDisposable _stateChange;
    private readonly IDisposable _startCheck;
    private HarnessConnection? _current;
    private HarnessConnection? _ready;
    private string? _lost;
    private bool _hasState;
    private bool _disposed;

    /// <summary>Starts listening on <see cref="HarnessGuestOptions.SocketPath"/> and couples itself to <paramref name="vm"/>.</summary>
    /// <param name="options">The socket and timeouts.</param>
    /// <param name="memory">The RAM the harness maps.</param>
    /// <param name="vm">The VM whose run state the harness follows.</param>
    /// <param name="failMigration">Fails the outgoing migration, if one runs (when the harness goes away).</param>
    /// <param name="logger">Where the harness's comings and goings are logged.</param>
    /// <exception cref="GuestHarnessSetupException">The socket cannot be created, or a RAM block name does not fit the memory table.</exception>
    public HarnessGuest(
        HarnessGuestOptions options, GuestMemory memory, VirtualMachine vm, Action<Exception> failMigration, ILogger<HarnessGuest> logger)
    {
        _options = options;
        _memory = memory;
        _vm = vm;
        _failMigration = failMigration;
        _logger = logger;
        MemoryTable = BuildMemoryTable(memory);
        _stateChange = vm.StateChangeHandlers.Register(OnRunStateChange, priority: 0, name: "guest harness");
        _startCheck = vm.StartChecks.Register(CheckCanStart);
        vm.CpuThrottleChanged += OnThrottleChanged;
        try
        {
            _listener = new HarnessListener(options.SocketPath, OnAccepted, logger);
        }
        catch
        {
            vm.CpuThrottleChanged -= OnThrottleChanged;
            _startCheck.Dispose();
            _stateChange.Dispose();
            throw;
        }
    }

    /// <summary>The socket the harness connects to.</summary>
    public string SocketPath => _options.SocketPath;

    /// <summary>Where each PAUSE and RUN is noted during an outgoing migration (its report's timeline); null for nowhere.</summary>
    public MiniVmm.Migration.Control.IMigrationActivityNotes? ActivityNotes { get; init; }

    /// <summary>The regions SET_MEM_TABLE sends, one per RAM block, in the blocks' order.</summary>
    public IReadOnlyList<HarnessMemoryRegion> MemoryTable { get; }

    /// <summary>Whether a harness that announced STATE has connected (then the state section is written).</summary>
    public bool HasState
    {
        get
        {
            lock (_gate)
            {
                return _hasState;
            }
        }
    }

    /// <summary>The harness connected now, or null.</summary>
    public HarnessConnection? Connection
    {
        get
        {
            lock (_gate)
            {
                return _current is { IsClosed: false } current ? current : _ready;
            }
        }
    }

    /// <inheritdoc />
    public void Register(SaveStateRegistry registry) =>
        registry.RegisterLive(HarnessStateSection.IdStr, 0, HarnessStateSection.VersionId, new HarnessStateSection(this));

    /// <summary>SAVE_STATE from the connected harness. Big lock held, VM stopped.</summary>
    /// <exception cref="GuestHarnessException">No harness, or it failed.</exception>
    public byte[] SaveState()
    {
        _vm.Bql.AssertHeld();
        HarnessConnection connection = Publish() ?? throw new GuestHarnessException(
            $"guest harness on {SocketPath}: not connected, so its state cannot be saved{LostSuffix()}");
        return connection.SaveState();
    }

    /// <summary>
    /// LOAD_STATE to this VM's harness, waiting up to the connect timeout for one to connect.
    /// Big lock held (incoming migration).
    /// </summary>
    /// <exception cref="GuestHarnessException">No harness came, it has no STATE, or it refused the bytes.</exception>
    public void LoadState(byte[] state)
    {
        _vm.Bql.AssertHeld();
        HarnessConnection connection = WaitForHarness() ?? throw new GuestHarnessException(
            $"no guest harness connected to {SocketPath} within {_options.ConnectTimeout.TotalMilliseconds:0} ms to take the incoming state");
        if ((connection.Features & HarnessFeatures.State) == 0)
        {
            throw new GuestHarnessException(
                $"{connection.Name} did not announce STATE in its HELLO, so it cannot take the incoming state ({state.Length} bytes)");
        }

        connection.LoadState(state);
    }

    /// <summary>What <c>x-query-guest-harness</c> shows. Big lock held.</summary>
    public JsonObject Describe()
    {
        HarnessConnection? connection = Connection;
        var result = new JsonObject
        {
            ["socket"] = SocketPath,
            ["connected"] = connection is not null,
        };
        if (connection is not null)
        {
            result["pid"] = connection.ProcessId;
            result["features"] = new JsonArray(
                [.. Enum.GetValues<HarnessFeatures>()
                    .Where(f => f != HarnessFeatures.None && connection.Features.HasFlag(f))
                    .Select(f => JsonValue.Create(f.ToString().ToLowerInvariant()))]);
            result["throttle"] = connection.AcknowledgedThrottle;
        }
        else if (LostReason() is { } lost)
        {
            result["lost"] = lost;
        }

        return result;
    }

    /// <summary>Stops listening, asks the harness to shut down and closes its connection; later calls do nothing.</summary>
    public void Dispose()
    {
        HarnessConnection? current;
        HarnessConnection? ready;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            current = _current;
            ready = _ready;
            Monitor.PulseAll(_gate);
        }

        _listener.Dispose();
        foreach (HarnessConnection? connection in new[] { current, ready })
        {
            if (connection is not null)
            {
                connection.Shutdown();
                connection.Dispose();
            }
        }

        _vm.CpuThrottleChanged -= OnThrottleChanged;
        _startCheck.Dispose();
        _stateChange.Dispose();
    }

    private static IReadOnlyList<HarnessMemoryRegion> BuildMemoryTable(GuestMemory memory)
    {
        var table = new List<HarnessMemoryRegion>();
        foreach (RamBlock block in memory.Blocks)
        {
            if (System.Text.Encoding.UTF8.GetByteCount(block.IdStr) >= HarnessMemoryRegion.IdStrLength)
            {
                throw new GuestHarnessSetupException(
                    $"-guest harness: RAM block '{block.IdStr}' has a name longer than the {HarnessMemoryRegion.IdStrLength - 1} bytes a memory table entry holds");
            }

            table.Add(new HarnessMemoryRegion((ulong)block.GuestAddress, (ulong)block.UsedLength, 0, block.IdStr));
        }

        return table;
    }

    /// <summary>
    /// The VM change-state handler: RUN on start, PAUSE on stop, each waiting for the reply up to
    /// the pause timeout (a timeout or refusal fails the start or stop). Big lock held.
    /// </summary>
    private void OnRunStateChange(bool running, RunState state)
    {
        if (Publish() is not { } connection)
        {
            return;
        }

        long sent = _vm.Time.GetTimestamp();
        string request = running ? "harness RUN" : "harness PAUSE";
        string outcome = "failed";
        try
        {
            if (running)
            {
                connection.Run();
                connection.Throttle(_vm.CpuThrottlePercentage);
            }
            else
            {
                connection.Pause();
            }

            outcome = "ok";
        }
        finally
        {
            ActivityNotes?.Note(request, string.Create(
                System.Globalization.CultureInfo.InvariantCulture,
                $"{outcome} after {_vm.Time.GetElapsedTime(sent).TotalMilliseconds:F1} ms ({state.ToQapiName()})"));
        }
    }

    /// <summary>
    /// The start check: a connected harness lets the VM start; before any harness connected the
    /// start waits for one up to the connect timeout; after one went away it refuses at once
    /// until a new one connects. Big lock held.
    /// </summary>
    private string? CheckCanStart()
    {
        if (WaitForHarness() is not null)
        {
            return null;
        }

        return LostReason() is { } lost
            ? $"the guest harness is gone ({lost}); connect a new harness to {SocketPath} first"
            : $"no guest harness connected to {SocketPath} within {_options.ConnectTimeout.TotalMilliseconds:0} ms (connect-timeout)";
    }

    /// <summary>The connected harness, waiting for one up to the connect timeout if none ever connected. Big lock held.</summary>
    private HarnessConnection? WaitForHarness()
    {
        if (Publish() is { } connection)
        {
            return connection;
        }

        lock (_gate)
        {
            if (_lost is not null)
            {
                return null;
            }

            long deadline = Environment.TickCount64 + (long)_options.ConnectTimeout.TotalMilliseconds;
            while (_ready is null && !_disposed)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    break;
                }

                LogWaitingForHarness(SocketPath, left);
                Monitor.Wait(_gate, TimeSpan.FromMilliseconds(left));
            }
        }

        return Publish();
    }

    /// <summary>Makes a harness that finished its handshake the VM's harness. Big lock held.</summary>
    private HarnessConnection? Publish()
    {
        lock (_gate)
        {
            if (_ready is { } ready)
            {
                _ready = null;
                if (!ready.IsClosed)
                {
                    _current = ready;
                    _lost = null;
                    _hasState |= (ready.Features & HarnessFeatures.State) != 0;
                    LogConnected(ready.Name, ready.Features);
                }
            }

            if (_current is { IsClosed: true } closed)
            {
                // Gone, though HandleDisconnect has not run yet: a start must not wait for it.
                _lost ??= $"{closed.Name} disconnected";
                return null;
            }

            return _current;
        }
    }

    /// <summary>A new connection, on the listener's thread: handshake, then publish it under the big lock.</summary>
    private void OnAccepted(Socket socket)
    {
        var channel = new HarnessChannel(socket, $"guest harness on {SocketPath}", _options.PauseTimeout, _logger);
        try
        {
            int pid = channel.PeerProcessId();
            channel.Rename($"guest harness (pid {pid}) on {SocketPath}");
            HarnessFeatures announced = channel.ReceiveHello(_options.ConnectTimeout);
            bool busy;
            lock (_gate)
            {
                busy = _disposed || _ready is not null || _current is { IsClosed: false };
            }

            if (busy)
            {
                LogRefusedSecond(channel.Name);
                channel.Reply(HarnessRequest.Hello, HarnessPayloads.Status(-16));
                channel.Dispose();
                return;
            }

            HarnessFeatures accepted = announced & (HarnessFeatures.State | HarnessFeatures.Throttle);
            channel.Reply(HarnessRequest.Hello, HarnessPayloads.U64((ulong)accepted));
            channel.StartReading();
            var connection = new HarnessConnection(channel, pid, accepted, _options.PauseTimeout);
            SendMemory(connection);
            channel.Closed += reason => OnClosed(connection, reason);
            if (channel.IsClosed)
            {
                throw new GuestHarnessException($"{channel.Name} went away during its handshake");
            }

            lock (_gate)
            {
                _ready = connection;
                Monitor.PulseAll(_gate);
            }

            using (_vm.Bql.Acquire())
            {
                if (Publish() == connection && _vm.IsRunning)
                {
                    // Only when the VM runs without its harness (one just went away): catch up.
                    connection.Run();
                }
            }
        }
        catch (Exception error) when (error is GuestHarnessException or IOException or SocketException or ObjectDisposedException)
        {
            LogHandshakeFailed(channel.Name, error.Message);
            channel.Dispose();
        }
    }

    private void SendMemory(HarnessConnection connection)
    {
        IReadOnlyList<RamBlock> blocks = _memory.Blocks;
        connection.SetMemTable(MemoryTable, [.. blocks.Select(b => b.MemoryFd.Number)]);
        connection.SetDirtyLog(
            [.. blocks.Select(b => new HarnessDirtyLog((ulong)b.DirtyBitmap.MappedBytes, 0))],
            [.. blocks.Select(b => b.DirtyBitmap.Fd.Number)]);
    }

    /// <summary>On the channel's reader thread: hands the disconnection to a thread that may take the big lock.</summary>
    private void OnClosed(HarnessConnection connection, string reason)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
        }

        ThreadPool.UnsafeQueueUserWorkItem(_ => HandleDisconnect(connection, reason), null);
    }

    /// <summary>
    /// A harness went away: a migration in progress fails naming it, and a VM that was running
    /// (or stopping for a switchover) stops in <c>internal-error</c>, with a
    /// <c>GUEST_HARNESS_DISCONNECTED</c> event after <c>STOP</c>.
    /// </summary>
    private void HandleDisconnect(HarnessConnection connection, string reason)
    {
        string message = $"{connection.Name} disconnected: {reason}";
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (_ready == connection)
            {
                _ready = null;
                return;
            }

            if (_current != connection)
            {
                return;
            }

            _current = null;
            _lost = message;
        }

        LogDisconnected(message);
        using (_vm.Bql.Acquire())
        {
            // Under the big lock a migration cannot switch over, so the VM stops first and the
            // migration fails next: whoever sees the migration failed sees the VM stopped too.
            if (_vm.IsLive || _vm.State == RunState.FinishMigrate)
            {
                _vm.StopForceState(RunState.InternalError);
            }

            _failMigration(new GuestHarnessException(message));

            _vm.Events.Emit("GUEST_HARNESS_DISCONNECTED", new JsonObject
            {
                ["socket"] = SocketPath,
                ["pid"] = connection.ProcessId,
                ["reason"] = reason,
            });
        }

        connection.Dispose();
    }

    /// <summary>On the thread that changed the throttle: forwards it to the harness from the thread pool.</summary>
    private void OnThrottleChanged(int percent) =>
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            if (Connection is not { } connection)
            {
                return;
            }

            try
            {
                connection.Throttle(_vm.CpuThrottlePercentage);
            }
            catch (GuestHarnessException error)
            {
                LogThrottleFailed(error.Message);
            }
        }, null);

    private string? LostReason()
    {
        lock (_gate)
        {
            return _lost;
        }
    }

    private string LostSuffix() => LostReason() is { } lost ? $" ({lost})" : "";

    [LoggerMessage(EventId = 5201, Level = LogLevel.Information, Message = "{Harness} connected, features {Features}")]
    private partial void LogConnected(string harness, HarnessFeatures features);

    [LoggerMessage(EventId = 5202, Level = LogLevel.Error, Message = "{Message}")]
    private partial void LogDisconnected(string message);

    [LoggerMessage(EventId = 5203, Level = LogLevel.Warning, Message = "{Harness}: handshake failed: {Reason}")]
    private partial void LogHandshakeFailed(string harness, string reason);

    [LoggerMessage(EventId = 5204, Level = LogLevel.Warning, Message = "{Harness} refused: a harness is already connected")]
    private partial void LogRefusedSecond(string harness);

    [LoggerMessage(EventId = 5205, Level = LogLevel.Information, Message = "waiting up to {Milliseconds} ms for a guest harness on {Path}")]
    private partial void LogWaitingForHarness(string path, long milliseconds);

    [LoggerMessage(EventId = 5206, Level = LogLevel.Warning, Message = "could not pass the vCPU throttle to the guest harness: {Reason}")]
    private partial void LogThrottleFailed(string reason);
}
