using System.Net;
using System.Net.Sockets;

namespace MiniVmm.Migration.Transport;

/// <summary>
/// Where an incoming migration waits for its stream: a listening socket bound to exactly the
/// address given (tcp, unix), a passed descriptor taken at once (fd), or a command/file opened
/// on accept. Dispose stops listening, removes a unix socket file it created and closes a passed
/// descriptor never accepted.
/// </summary>
public sealed class IncomingListener : IDisposable
{
    // Room for the main connection and the multifd channels that follow it at once.
    private const int MultifdBacklog = 16;

    private readonly MigrationUri _uri;
    private readonly Socket? _socket;
    private System.IO.Stream? _passed;
    private int _disposed;

    private IncomingListener(MigrationUri uri, Socket? socket, System.IO.Stream? passed = null)
    {
        _uri = uri;
        _socket = socket;
        _passed = passed;
    }

    /// <summary>The URI this listener serves.</summary>
    public MigrationUri Uri => _uri;

    /// <summary>The bound endpoint of a socket listener (tcp port 0 becomes the real port).</summary>
    public EndPoint? LocalEndPoint => _socket?.LocalEndPoint;

    /// <summary>
    /// Starts listening (sockets) right away, so a source can connect as soon as this returns.
    /// An <c>fd:NAME</c> URI takes the descriptor from <paramref name="passedDescriptors"/> now,
    /// as QEMU does, so that an unknown name fails here.
    /// </summary>
    /// <exception cref="IOException">The socket cannot listen, or no descriptor has the name.</exception>
    public static IncomingListener Listen(MigrationUri uri, Func<string, System.IO.Stream>? passedDescriptors = null)
    {
        switch (uri.Scheme)
        {
            case MigrationScheme.Tcp:
                return new IncomingListener(uri, Bind(OutgoingTransport.ResolveTcp(uri)));
            case MigrationScheme.Unix:
                if (File.Exists(uri.Target))
                {
                    File.Delete(uri.Target);
                }

                return new IncomingListener(uri, Bind(new UnixDomainSocketEndPoint(uri.Target)));
            case MigrationScheme.Fd:
                return new IncomingListener(uri, null, passedDescriptors?.Invoke(uri.Target)
                    ?? throw new IOException($"File descriptor named '{uri.Target}' has not been found"));
            default:
                return new IncomingListener(uri, null);
        }
    }

    /// <summary>Whether more connections than the main one can arrive here (tcp, unix): what multifd needs.</summary>
    public bool AcceptsMoreConnections => _socket is not null;

    /// <summary>Waits for the source (sockets) or opens the stream (exec, file, fd); on sockets, also each multifd channel after the main connection.</summary>
    public System.IO.Stream Accept(CancellationToken cancel)
    {
        switch (_uri.Scheme)
        {
            case MigrationScheme.Tcp:
            case MigrationScheme.Unix:
                Socket connection = _socket!.AcceptAsync(cancel).AsTask().GetAwaiter().GetResult();
                if (_uri.Scheme == MigrationScheme.Tcp)
                {
                    connection.NoDelay = true;
                }
                else
                {
                    connection.ReceiveBufferSize = OutgoingTransport.SocketBufferBytes;
                }

                return new NetworkStream(connection, ownsSocket: true);
            case MigrationScheme.Exec:
                return ExecCommandStream.StartIncoming(_uri.Target);
            case MigrationScheme.File:
                var file = new FileStream(_uri.Target, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
                file.Seek(_uri.Offset, SeekOrigin.Begin);
                return file;
            case MigrationScheme.Fd:
                return Interlocked.Exchange(ref _passed, null)
                    ?? throw new InvalidOperationException($"fd:{_uri.Target} was accepted already");
            default:
                throw new ArgumentOutOfRangeException(nameof(_uri), _uri.Scheme, "unknown migration scheme");
        }
    }

    private static Socket Bind(EndPoint endpoint)
    {
        ProtocolType protocol = endpoint is UnixDomainSocketEndPoint ? ProtocolType.Unspecified : ProtocolType.Tcp;
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, protocol);
        try
        {
            if (protocol == ProtocolType.Tcp)
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            }

            socket.Bind(endpoint);
            socket.Listen(MultifdBacklog);
            return socket;
        }
        catch (SocketException error)
        {
            socket.Dispose();
            throw new IOException($"Failed to listen on '{endpoint}': {error.Message}", error);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _socket?.Dispose();
        Interlocked.Exchange(ref _passed, null)?.Dispose();
        if (_uri.Scheme == MigrationScheme.Unix)
        {
            try
            {
                File.Delete(_uri.Target);
            }
            catch (IOException)
            {
                // Someone else's file now, or already gone.
            }
        }
    }
}
