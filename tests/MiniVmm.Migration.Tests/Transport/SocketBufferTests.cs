using System.Net.Sockets;
using MiniVmm.Migration.Transport;

namespace MiniVmm.Migration.Tests.Transport;

/// <summary>
/// The socket buffers of migration connections: the kernel's autotuning on TCP, with a small send
/// buffer when the peer is this host, and a fixed size on UNIX sockets (see
/// <see cref="OutgoingTransport.SocketBufferBytes"/> and <see cref="OutgoingTransport.LocalSendBufferBytes"/>).
/// </summary>
[TestFixture]
public sealed class SocketBufferTests
{
    [Test]
    public void Tcp_connections_keep_the_kernels_autotuning()
    {
        var uri = MigrationUri.Parse($"tcp:127.0.0.1:{Multifd.MultifdNode.FreePort()}");
        using var listener = IncomingListener.Listen(uri);
        using var source = (NetworkStream)OutgoingTransport.Connect(uri, null, CancellationToken.None);
        using var destination = (NetworkStream)listener.Accept(CancellationToken.None);

        // A buffer set by hand reads back as twice the size asked for (capped by the host's
        // maximum) and stays so; an autotuned receive buffer starts at tcp_rmem's default.
        Assert.That(destination.Socket.ReceiveBufferSize, Is.Not.EqualTo(FixedSize("rmem_max")), "receive buffer");
        Assert.That(destination.Socket.ReceiveBufferSize, Is.EqualTo(TcpDefault("tcp_rmem")), "receive buffer");
    }

    [TestCase("127.0.0.1")]
    [TestCase("::1")]
    public void A_tcp_connection_to_this_host_gets_the_small_send_buffer(string address)
    {
        string host = address.Contains(':') ? $"[{address}]" : address;
        var uri = MigrationUri.Parse($"tcp:{host}:{Multifd.MultifdNode.FreePort()}");
        using var listener = IncomingListener.Listen(uri);
        using var source = (NetworkStream)OutgoingTransport.Connect(uri, null, CancellationToken.None);
        using var destination = (NetworkStream)listener.Accept(CancellationToken.None);
        int expected = 2 * Math.Min(OutgoingTransport.LocalSendBufferBytes, ReadInts("/proc/sys/net/core/wmem_max")[0]);
        Assert.That(source.Socket.SendBufferSize, Is.EqualTo(expected));
    }

    [Test]
    public void A_peer_at_the_sockets_own_non_loopback_address_is_this_host()
    {
        System.Net.IPAddress? own = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !System.Net.IPAddress.IsLoopback(a));
        if (own is null)
        {
            Assert.Ignore("this machine has no IPv4 address besides loopback");
        }

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(own, 0));
        listener.Listen(1);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.That(OutgoingTransport.PeerIsThisHost(socket), Is.False, "not connected yet");
        socket.Connect(listener.LocalEndPoint!);
        using Socket accepted = listener.Accept();
        Assert.That(OutgoingTransport.PeerIsThisHost(socket), Is.True, $"connected to {own}, this host's own address");
    }

    [Test]
    public void Unix_connections_get_the_fixed_size()
    {
        string path = Path.Combine(Path.GetTempPath(), $"minivmm-buf-{Guid.NewGuid():N}.sock");
        try
        {
            var uri = MigrationUri.Parse($"unix:{path}");
            using var listener = IncomingListener.Listen(uri);
            using var source = (NetworkStream)OutgoingTransport.Connect(uri, null, CancellationToken.None);
            using var destination = (NetworkStream)listener.Accept(CancellationToken.None);
            Assert.Multiple(() =>
            {
                Assert.That(source.Socket.SendBufferSize, Is.EqualTo(FixedSize("wmem_max")), "send buffer");
                Assert.That(destination.Socket.ReceiveBufferSize, Is.EqualTo(FixedSize("rmem_max")), "receive buffer");
            });
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static int FixedSize(string maximum) =>
        2 * Math.Min(OutgoingTransport.SocketBufferBytes, ReadInts($"/proc/sys/net/core/{maximum}")[0]);

    private static int TcpDefault(string name) => ReadInts($"/proc/sys/net/ipv4/{name}")[1];

    private static int[] ReadInts(string path) =>
        [.. File.ReadAllText(path).Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)
            .Select(v => int.Parse(v, System.Globalization.CultureInfo.InvariantCulture))];
}
