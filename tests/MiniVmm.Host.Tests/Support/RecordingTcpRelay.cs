using System.Net;
using System.Net.Sockets;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// A TCP forwarder for one connection: listens on 127.0.0.1, connects to the target when a client
/// arrives, copies both ways and records what the client sent (the migration stream as it travels
/// on the wire).
/// </summary>
public sealed class RecordingTcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly MemoryStream _recorded = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _relay;

    /// <summary>Starts listening; forwards to 127.0.0.1:<paramref name="targetPort"/>.</summary>
    public RecordingTcpRelay(int targetPort)
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _relay = RelayAsync(targetPort);
    }

    /// <summary>The port to migrate to.</summary>
    public int Port { get; }

    /// <summary>The bytes the client sent, so far.</summary>
    public byte[] Recorded
    {
        get
        {
            lock (_recorded)
            {
                return _recorded.ToArray();
            }
        }
    }

    private async Task RelayAsync(int targetPort)
    {
        using TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
        using var target = new TcpClient();
        await target.ConnectAsync(IPAddress.Loopback, targetPort, _stop.Token);
        NetworkStream fromClient = client.GetStream();
        NetworkStream toTarget = target.GetStream();
        Task forward = CopyAsync(fromClient, toTarget, record: true);
        Task backward = CopyAsync(toTarget, fromClient, record: false);
        await Task.WhenAny(forward, backward);
        await Task.WhenAll(forward.ContinueWith(_ => { }), backward.ContinueWith(_ => { }));
    }

    private async Task CopyAsync(NetworkStream from, NetworkStream to, bool record)
    {
        byte[] buffer = new byte[64 << 10];
        try
        {
            while (true)
            {
                int read = await from.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    to.Socket.Shutdown(SocketShutdown.Send);
                    return;
                }

                if (record)
                {
                    lock (_recorded)
                    {
                        _recorded.Write(buffer, 0, read);
                    }
                }

                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception error) when (error is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The other side went away: the relay ends with it.
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _relay;
        }
        catch (Exception error) when (error is OperationCanceledException or SocketException or IOException)
        {
            // Stopped before or while relaying.
        }

        _stop.Dispose();
        _recorded.Dispose();
    }
}
