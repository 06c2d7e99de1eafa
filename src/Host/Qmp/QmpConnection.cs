using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MiniVmm.Host.Qmp.Protocol;
using MiniVmm.Native;

namespace MiniVmm.Host.Qmp;

/// <summary>
/// One connected QMP client: sends the greeting, reads and answers its requests in order, and
/// passes it events once it has negotiated. Everything it is sent goes through a bounded queue
/// drained by its own writer, so a slow or dead client never blocks the VM: a client whose queue
/// overflows is disconnected.
/// </summary>
public sealed partial class QmpConnection
{
    /// <summary>How many messages may wait for a client before it is dropped.</summary>
    public const int OutgoingQueueCapacity = 4096;

    private const int ReceiveBufferBytes = 64 * 1024;

    private readonly Socket _socket;
    private readonly QmpDispatcher _dispatcher;
    private readonly ILogger _logger;
    private readonly Channel<byte[]> _outgoing = Channel.CreateBounded<byte[]>(
        new BoundedChannelOptions(OutgoingQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private readonly CancellationTokenSource _closing = new();

    /// <summary>Wraps an accepted client socket; call <see cref="RunAsync"/> to serve it.</summary>
    public QmpConnection(int id, Socket socket, QmpDispatcher dispatcher, ILogger logger)
    {
        Id = id;
        _socket = socket;
        _dispatcher = dispatcher;
        _logger = logger;
    }

    /// <summary>A number naming this client in logs.</summary>
    public int Id { get; }

    /// <summary>The client's protocol state.</summary>
    public QmpSession Session { get; } = new();

    /// <summary>
    /// Serves the client until it disconnects or <paramref name="stopping"/> fires, then lets the
    /// queued messages out for at most <paramref name="flushTimeout"/> and closes the socket.
    /// </summary>
    public async Task RunAsync(TimeSpan flushTimeout, CancellationToken stopping)
    {
        using CancellationTokenRegistration onStop = stopping.Register(static state => ((CancellationTokenSource)state!).Cancel(), _closing);
        LogConnected(Id);
        Enqueue(QmpMessages.Greeting());
        Task writer = WriteLoopAsync();
        try
        {
            await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (Exception error) when (error is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The client went away, or the server is stopping.
        }
        catch (NativeCallException error) when (error.Errno is Errno.ECONNRESET or Errno.EPIPE)
        {
            // The client went away with input unread.
        }
        catch (IOException error)
        {
            // recvmsg failed, or the client passed more descriptors than fit in one read.
            LogReceiveFailed(error, Id);
        }
        finally
        {
            Session.CloseReceivedDescriptors();
        }

        _outgoing.Writer.TryComplete();
        try
        {
            await writer.WaitAsync(flushTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            LogFlushTimedOut(Id);
        }

        _socket.Dispose();
        await writer.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        LogDisconnected(Id);
    }

    /// <summary>Queues an event message if the client has completed negotiation.</summary>
    public void SendEvent(byte[] message)
    {
        if (Session.IsNegotiated)
        {
            Enqueue(message);
        }
    }

    /// <summary>
    /// Reads with recvmsg(2) rather than <see cref="Socket.ReceiveAsync(Memory{byte}, SocketFlags, CancellationToken)"/>
    /// so that file descriptors passed with SCM_RIGHTS reach the session before the command they
    /// came with is dispatched. A zero-byte receive waits until the socket is readable; then
    /// everything queued is read without blocking.
    /// </summary>
    private async Task ReadLoopAsync()
    {
        var framer = new QmpInputFramer();
        var inputs = new List<QmpInput>();
        var descriptors = new List<FileDescriptorHandle>();
        byte[] buffer = new byte[ReceiveBufferBytes];
        while (true)
        {
            await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, _closing.Token).ConfigureAwait(false);
            while (true)
            {
                _closing.Token.ThrowIfCancellationRequested();
                descriptors.Clear();
                if (!UnixSocketMessages.TryReceive(_socket.SafeHandle, buffer, descriptors, out int received, dontWait: true))
                {
                    break;
                }

                Session.AddReceivedDescriptors(descriptors);
                if (received == 0)
                {
                    return;
                }

                inputs.Clear();
                framer.Feed(buffer.AsSpan(0, received), inputs);
                foreach (QmpInput input in inputs)
                {
                    QmpDispatchResult result = _dispatcher.Dispatch(input, Session);
                    Enqueue(result.Reply);
                    foreach (Action after in result.AfterReply)
                    {
                        after();
                    }
                }
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await foreach (byte[] message in _outgoing.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                await _socket.SendAsync(message, SocketFlags.None).ConfigureAwait(false);
            }
        }
        catch (Exception error) when (error is SocketException or ObjectDisposedException)
        {
            Abort();
        }
    }

    private void Enqueue(JsonObject message) => Enqueue(QmpJsonWriter.ToWireMessage(message));

    private void Enqueue(byte[] message)
    {
        if (!_outgoing.Writer.TryWrite(message) && _outgoing.Writer.TryComplete())
        {
            LogQueueOverflow(Id, OutgoingQueueCapacity);
            Abort();
        }
    }

    private void Abort()
    {
        try
        {
            _closing.Cancel();
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception error) when (error is ObjectDisposedException or SocketException)
        {
            // Already closed.
        }
    }

    [LoggerMessage(EventId = 3301, Level = LogLevel.Debug, Message = "QMP client {Client} connected")]
    private partial void LogConnected(int client);

    [LoggerMessage(EventId = 3302, Level = LogLevel.Debug, Message = "QMP client {Client} disconnected")]
    private partial void LogDisconnected(int client);

    [LoggerMessage(EventId = 3303, Level = LogLevel.Warning, Message = "QMP client {Client} does not read: more than {Capacity} messages queued, disconnecting it")]
    private partial void LogQueueOverflow(int client, int capacity);

    [LoggerMessage(EventId = 3305, Level = LogLevel.Warning, Message = "QMP client {Client}: receiving failed, disconnecting it")]
    private partial void LogReceiveFailed(Exception error, int client);

    [LoggerMessage(EventId = 3304, Level = LogLevel.Warning, Message = "QMP client {Client} did not take its last messages in time")]
    private partial void LogFlushTimedOut(int client);
}
