using System.Net;
using System.Net.Sockets;

namespace MiniVmm.Migration.Transport;

/// <summary>Opens the transport an outgoing migration writes to, for each URI scheme.</summary>
public static class OutgoingTransport
{
    /// <summary>
    /// Socket buffer size asked for on UNIX stream sockets (the kernel may cap it), whose default
    /// is a few hundred KiB and does not grow. TCP sockets keep the kernel's autotuning, as QEMU's
    /// do. Measured on this 2-core VM over loopback: with fixed 4 MiB buffers, 1 GiB over two TCP
    /// connections took 192–273 ms against 160–181 ms autotuned (a C probe, 4 runs each; the data
    /// leaves the cache between the sender's copy and the receiver's); a 1 GiB single-stream
    /// migration took the same either way (medians 408 and 407.5 ms over 10 runs each).
    /// </summary>
    public const int SocketBufferBytes = 4 << 20;

    /// <summary>
    /// Send buffer asked for on a TCP connection whose peer is on this host (a loopback address,
    /// or the connection's own address): a local migration, such as moving a VM to an upgraded
    /// VMM on the same machine. The round trip there is microseconds, yet autotuning grows the
    /// buffer to tcp_wmem's maximum (4 MiB here), and the data in flight then leaves the L2 cache
    /// between the sender's copy and the receiver's. Measured on this 2-core VM (1 MiB L2 per
    /// core), 1 GiB over two loopback connections took 107–175 ms with 256 KiB against 170–206
    /// ms autotuned (a C probe, 5 runs each); a 1 GiB migration, medians of 8–10 alternating
    /// runs: multifd=2 232 against 267 ms, one stream 251 against 294.5 ms. Remote peers keep
    /// autotuning, which a real network's bandwidth-delay product needs.
    /// </summary>
    public const int LocalSendBufferBytes = 256 << 10;

    /// <summary>
    /// Connects to <paramref name="uri"/>. <paramref name="passedDescriptors"/> resolves
    /// <c>fd:NAME</c>. Runs on the migration thread; cancellation aborts a pending connect.
    /// </summary>
    public static System.IO.Stream Connect(MigrationUri uri, Func<string, System.IO.Stream>? passedDescriptors, CancellationToken cancel)
    {
        switch (uri.Scheme)
        {
            case MigrationScheme.Tcp:
                return ConnectSocket(ResolveTcp(uri), cancel, $"tcp:{uri.Target}");
            case MigrationScheme.Unix:
                return ConnectSocket(new UnixDomainSocketEndPoint(uri.Target), cancel, $"unix:{uri.Target}");
            case MigrationScheme.Exec:
                return ExecCommandStream.StartOutgoing(uri.Target);
            case MigrationScheme.File:
                var file = new FileStream(uri.Target, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
                file.SetLength(uri.Offset);
                file.Seek(uri.Offset, SeekOrigin.Begin);
                return file;
            case MigrationScheme.Fd:
                return passedDescriptors?.Invoke(uri.Target)
                    ?? throw new IOException($"File descriptor named '{uri.Target}' has not been found");
            default:
                throw new ArgumentOutOfRangeException(nameof(uri), uri.Scheme, "unknown migration scheme");
        }
    }

    /// <summary>The address a tcp URI names (a host name resolves to its first address).</summary>
    public static IPEndPoint ResolveTcp(MigrationUri uri)
    {
        string host = uri.Host ?? "";
        if (!IPAddress.TryParse(host, out IPAddress? address))
        {
            address = Dns.GetHostAddresses(host.Length == 0 ? "localhost" : host)
                .OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1)
                .FirstOrDefault() ?? throw new IOException($"tcp:{uri.Target}: '{host}' has no address");
        }

        return new IPEndPoint(address, uri.Port);
    }

    /// <summary>Whether a connected TCP socket's peer is this host: a loopback address, or the socket's own address.</summary>
    public static bool PeerIsThisHost(Socket socket) =>
        socket.RemoteEndPoint is IPEndPoint remote
        && (IPAddress.IsLoopback(remote.Address) || (socket.LocalEndPoint is IPEndPoint local && local.Address.Equals(remote.Address)));

    private static System.IO.Stream ConnectSocket(EndPoint endpoint, CancellationToken cancel, string what)
    {
        ProtocolType protocol = endpoint is UnixDomainSocketEndPoint ? ProtocolType.Unspecified : ProtocolType.Tcp;
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, protocol);
        try
        {
            if (protocol == ProtocolType.Tcp)
            {
                socket.NoDelay = true;
            }
            else
            {
                socket.SendBufferSize = SocketBufferBytes;
            }

            socket.ConnectAsync(endpoint, cancel).AsTask().GetAwaiter().GetResult();
            if (PeerIsThisHost(socket))
            {
                socket.SendBufferSize = LocalSendBufferBytes;
            }
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (Exception error) when (error is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            throw new IOException($"Failed to connect to '{what}': {error.Message}", error);
        }
    }
}
