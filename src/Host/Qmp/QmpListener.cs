using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using MiniVmm.Native;

namespace MiniVmm.Host.Qmp;

/// <summary>
/// One listening QMP UNIX socket: binds it (replacing a stale file, mode 0600), accepts clients
/// and hands them to the server, and removes the socket file when disposed.
/// </summary>
public sealed partial class QmpListener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Action<Socket> _accepted;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _firstClient = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _acceptLoop;

    private QmpListener(QmpSocketOptions options, Socket socket, Action<Socket> accepted, ILogger logger)
    {
        Options = options;
        _socket = socket;
        _accepted = accepted;
        _logger = logger;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Where this listener listens.</summary>
    public QmpSocketOptions Options { get; }

    /// <summary>Completes when the first client has connected.</summary>
    public Task FirstClient => _firstClient.Task;

    /// <summary>Binds and listens on <paramref name="options"/>'s path; <paramref name="accepted"/> gets every client.</summary>
    /// <exception cref="QmpServerException">The socket could not be created there.</exception>
    public static QmpListener Start(QmpSocketOptions options, Action<Socket> accepted, ILogger logger)
    {
        Socket socket;
        try
        {
            socket = PrivateUnixSocket.Listen(options.Path, backlog: 16);
        }
        catch (Exception error) when (error is SocketException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new QmpServerException($"cannot listen for QMP on unix:{options.Path}: {error.Message}", error);
        }

        var listener = new QmpListener(options, socket, accepted, logger);
        listener.LogListening(options.Path);
        return listener;
    }

    /// <summary>Stops accepting and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        _firstClient.TrySetCanceled();
        try
        {
            File.Delete(Options.Path);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            LogRemoveFailed(error, Options.Path);
        }

        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        await Task.Yield();
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception error) when (error is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (!_stopping.IsCancellationRequested)
                {
                    LogAcceptFailed(error, Options.Path);
                }

                return;
            }

            _accepted(client);
            _firstClient.TrySetResult();
        }
    }

    [LoggerMessage(EventId = 3201, Level = LogLevel.Information, Message = "QMP listening on unix:{Path}")]
    private partial void LogListening(string path);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Error, Message = "QMP socket unix:{Path} stopped accepting clients")]
    private partial void LogAcceptFailed(Exception error, string path);

    [LoggerMessage(EventId = 3203, Level = LogLevel.Warning, Message = "could not remove the QMP socket file {Path}")]
    private partial void LogRemoveFailed(Exception error, string path);
}
