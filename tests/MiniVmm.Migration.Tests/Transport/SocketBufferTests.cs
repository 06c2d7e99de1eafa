using System.Net.Sockets;
using MiniVmm.Migration.Transport;

namespace MiniVmm.Migration.Tests.Transport;

/// <summary>
/// The socket buffers of migration connections: the kernel's autotuning on TCP, a fixed size on
/// UNIX sockets (see <see cref="OutgoingTransport.SocketBufferBytes"/>).
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
