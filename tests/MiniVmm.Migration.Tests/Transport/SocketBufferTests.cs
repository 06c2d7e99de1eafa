using System.Net.Sockets;
using MiniVmm.Migration.Transport;

namespace MiniVmm.Migration.Tests.Transport;

/// <summary>
/// The socket buffers each kind of migration connection gets: fixed 4 MiB on the main
/// connection, the kernel's autotuning (a small starting buffer that grows) on multifd channels
/// over TCP, as measured fastest for each (see <see cref="OutgoingTransport.SocketBufferBytes"/>).
/// </summary>
[TestFixture]
public sealed class SocketBufferTests
{
    [TestCase(MigrationConnectionRole.Main, true)]
    [TestCase(MigrationConnectionRole.MultifdChannel, false)]
    public void Tcp_connections_get_the_buffers_of_their_role(MigrationConnectionRole role, bool fixedBuffers)
    {
        var uri = MigrationUri.Parse($"tcp:127.0.0.1:{Multifd.MultifdNode.FreePort()}");
        using var listener = IncomingListener.Listen(uri);
        using var source = (NetworkStream)OutgoingTransport.Connect(uri, null, CancellationToken.None, role);
        using var destination = (NetworkStream)listener.Accept(CancellationToken.None, role);

        // A buffer set by hand reads back as twice the size asked for, capped by the host's
        // maximum; an autotuned receive buffer starts at tcp_rmem's default and grows later.
        int expectedSend = 2 * Math.Min(OutgoingTransport.SocketBufferBytes, HostMaximum("wmem_max"));
        int expectedReceive = 2 * Math.Min(OutgoingTransport.SocketBufferBytes, HostMaximum("rmem_max"));
        Assert.Multiple(() =>
        {
            Assert.That(destination.Socket.ReceiveBufferSize == expectedReceive, Is.EqualTo(fixedBuffers), "receive buffer");
            if (fixedBuffers)
            {
                Assert.That(source.Socket.SendBufferSize, Is.EqualTo(expectedSend), "send buffer");
            }
        });
    }

    private static int HostMaximum(string name) =>
        int.Parse(File.ReadAllText($"/proc/sys/net/core/{name}").Trim(), System.Globalization.CultureInfo.InvariantCulture);
}
