using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using MiniVmm.Native;

namespace MiniVmm.GuestHarness;

/// <summary>
/// The harness socket: a UNIX stream socket at the configured path, mode 0600, accepted on a
/// thread of its own; each connection goes to the callback on that thread. Disposing stops
/// accepting and removes the socket file.
/// </summary>
public sealed partial class HarnessListener : IDisposable
{
    private readonly Socket _socket;
    private readonly Action<Socket> _accepted;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private int _disposed;

    /// <summary>Binds <paramref name="path"/> and starts accepting.</summary>
    /// <exception cref="GuestHarnessSetupException">The socket cannot be created there.</exception>
    public HarnessListener(string path, Action<Socket> accepted, ILogger logger)
    {
        Path = path;
        _accepted = accepted;
        _logger = logger;
        try
        {
            _socket = PrivateUnixSocket.Listen(path, backlog: 4);
        }
        catch (Exception error) when (error is SocketException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new GuestHarnessSetupException($"-guest harness: cannot listen on {path}: {error.Message}", error);
        }

        _thread = new Thread(AcceptLoop) { Name = "guest harness listener", IsBackground = true };
        _thread.Start();
        LogListening(path);
    }

    /// <summary>The socket's path.</summary>
    public string Path { get; }

    /// <summary>Stops accepting and removes the socket file; later calls do nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // A listening socket may refuse shutdown; closing it below wakes the accept anyway.
        }

        _socket.Dispose();
        if (_thread != Thread.CurrentThread)
        {
            _thread.Join();
        }

        try
        {
            File.Delete(Path);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            LogRemoveFailed(error, Path);
        }
    }

    private void AcceptLoop()
    {
        while (Volatile.Read(ref _disposed) == 0)
        {
            Socket client;
            try
            {
                client = _socket.Accept();
            }
            catch (Exception error) when (error is SocketException or ObjectDisposedException)
            {
                if (Volatile.Read(ref _disposed) == 0)
                {
                    LogAcceptFailed(error, Path);
                }

                return;
            }

            _accepted(client);
        }
    }

    [LoggerMessage(EventId = 5101, Level = LogLevel.Information, Message = "waiting for a guest harness on unix:{Path}")]
    private partial void LogListening(string path);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Error, Message = "the guest harness socket unix:{Path} stopped accepting")]
    private partial void LogAcceptFailed(Exception error, string path);

    [LoggerMessage(EventId = 5103, Level = LogLevel.Warning, Message = "could not remove the guest harness socket {Path}")]
    private partial void LogRemoveFailed(Exception error, string path);
}
