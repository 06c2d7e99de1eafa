using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.Multifd;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Migration.Tests.Multifd;

/// <summary>How the source hands packets to its channels, over real TCP connections.</summary>
[TestFixture]
public sealed class MultifdSenderTests
{
    private const long RamSize = 64L << 20;
    private const int Packets = (int)(RamSize / 4096 / MultifdWire.MaxPagesPerPacket);
    private const long PacketBytes = MultifdWire.PacketHeaderSize + ((long)MultifdWire.MaxPagesPerPacket * 4096);

    [Test]
    public void Packets_go_to_a_channel_with_room_while_another_channel_is_stalled()
    {
        // Channel 0's peer never reads, so its socket, its thread and its queue fill after a few
        // packets. Handing packets out strictly in turn would then block the migration thread
        // with half the packets unsent; the sender gives them to channel 1 instead, as QEMU gives
        // each packet to an idle channel.
        using var memory = GuestMemory.ForMachineNone(RamSize);
        RamBlock block = memory.Blocks[0];
        var peers = new List<Socket>();
        var connections = new List<Socket>();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        System.IO.Stream Connect(CancellationToken cancel)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            if (connections.Count == 0)
            {
                socket.SendBufferSize = 4096; // the stalled channel holds little
            }

            socket.Connect(listener.LocalEndPoint!);
            connections.Add(socket);
            peers.Add(listener.Accept());
            return new NetworkStream(socket, ownsSocket: false);
        }

        MultifdSender sender = MultifdSender.Open(2, Connect, CancellationToken.None, NullLogger.Instance);
        try
        {
            long drained = 0;
            Task draining = Task.Run(() =>
            {
                var buffer = new byte[1 << 20];
                int read;
                while ((read = peers[1].Receive(buffer)) > 0)
                {
                    Interlocked.Add(ref drained, read);
                }
            });
            Task queueing = Task.Run(() =>
            {
                for (long offset = 0; offset < RamSize; offset += 4096)
                {
                    sender.QueuePage(block, offset);
                }

                sender.Flush();
            });

            Assert.That(queueing.Wait(TimeSpan.FromSeconds(60)), Is.True, "every packet was handed to a channel");
            long wanted = (Packets - 8) * PacketBytes;
            SpinWait.SpinUntil(() => Interlocked.Read(ref drained) >= wanted, TimeSpan.FromSeconds(60));
            Assert.That(Interlocked.Read(ref drained), Is.GreaterThanOrEqualTo(wanted),
                $"channel 1 carried all but the few packets channel 0 holds (of {Packets})");
            Assert.That(sender.BytesQueued, Is.EqualTo(Packets * PacketBytes));
            sender.Shutdown();
            draining.Wait(TimeSpan.FromSeconds(30));
        }
        finally
        {
            sender.Shutdown();
            sender.Dispose();
            foreach (Socket socket in peers.Concat(connections))
            {
                socket.Dispose();
            }
        }
    }
}
