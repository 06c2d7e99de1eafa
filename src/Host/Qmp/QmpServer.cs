using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using MiniVmm.Host.Qmp.Protocol;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Qmp;

/// <summary>
/// The QMP monitor: listens on the configured UNIX sockets, serves every client concurrently
/// and forwards the VM's events to each client that has completed negotiation.
/// </summary>
public sealed partial class QmpServer : IAsyncDisposable
{
    /// <summary>How long a closing client may take to receive its last messages.</summary>
    public static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(2);

    private readonly QmpDispatcher _dispatcher;
    private readonly ILogger<QmpServer> _logger;
    private readonly IDisposable _eventSubscription;
    private readonly List<QmpListener> _listeners = [];
    private readonly ConcurrentDictionary<QmpConnection, Task> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private int _nextConnectionId;

    /// <summary>Creates a server for <paramref name="vm"/>; it listens once <see cref="Listen"/> is called.</summary>
    public QmpServer(VirtualMachine vm, QmpDispatcher dispatcher, ILogger<QmpServer> logger)
    {
        _dispatcher = dispatcher;
        _logger = logger;
        _eventSubscription = vm.Events.Subscribe(Broadcast);
    }

    /// <summary>The sockets listened on.</summary>
    public IReadOnlyList<QmpListener> Listeners => _listeners;

    /// <summary>Starts listening on <paramref name="options"/>.</summary>
    /// <exception cref="QmpServerException">The socket could not be created.</exception>
    public QmpListener Listen(QmpSocketOptions options)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        QmpListener listener = QmpListener.Start(options, Accept, _logger);
        lock (_listeners)
        {
            _listeners.Add(listener);
        }

        return listener;
    }

    /// <summary>Stops listening, lets every client receive what is queued for it, and disconnects them.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        QmpListener[] listeners;
        lock (_listeners)
        {
            listeners = [.. _listeners];
        }

        foreach (QmpListener listener in listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        _eventSubscription.Dispose();
    }

    private void Accept(Socket client)
    {
        if (_stopping.IsCancellationRequested)
        {
            client.Dispose();
            return;
        }

        var connection = new QmpConnection(Interlocked.Increment(ref _nextConnectionId), client, _dispatcher, _logger);
        var serve = new Task<Task>(() => ServeAsync(connection));
        _connections[connection] = serve.Unwrap();
        serve.Start(TaskScheduler.Default);
    }

    private async Task ServeAsync(QmpConnection connection)
    {
        try
        {
            await connection.RunAsync(FlushTimeout, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception error)
        {
            LogConnectionFailed(error, connection.Id);
        }
        finally
        {
            _connections.TryRemove(connection, out _);
        }
    }

    private void Broadcast(VmEvent vmEvent)
    {
        byte[] message = QmpJsonWriter.ToWireMessage(QmpMessages.Event(vmEvent));
        foreach (QmpConnection connection in _connections.Keys)
        {
            connection.SendEvent(message);
        }
    }

    [LoggerMessage(EventId = 3210, Level = LogLevel.Error, Message = "QMP client {Client} failed")]
    private partial void LogConnectionFailed(Exception error, int client);
}
