using System.Net;
using System.Net.Sockets;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Native.Tests;

public sealed class WholeReceiveTests
{
    [TestCase(true, TestName = "ABlockingSocketFillsTheBufferFromManySmallSends")]
    [TestCase(false, TestName = "ANonblockingSocketFillsTheBufferFromManySmallSends")]
    public void TheBufferIsFilledInOrderFromManySmallSends(bool blocking)
    {
        var expected = new byte[3 << 20];
        new Random(11).NextBytes(expected);
        (Socket sender, Socket receiver) = LoopbackTcpPair.Connect();
        using (sender)
        using (receiver)
        {
            receiver.Blocking = blocking;
            Task writing = Task.Run(() =>
            {
                for (int at = 0; at < expected.Length; at += 4099)
                {
                    sender.Send(expected, at, Math.Min(4099, expected.Length - at), SocketFlags.None);
                    if (at % 7 == 0)
                    {
                        Thread.Sleep(1); // the reader finds the data arriving in pieces
                    }
                }
            });

            var received = new byte[expected.Length];
            int got = WholeReceive.ReceiveAll(receiver.SafeHandle, received);
            Assert.That(writing.Wait(TimeSpan.FromMinutes(1)), Is.True);
            Assert.That(got, Is.EqualTo(expected.Length));
            Assert.That(received, Is.EqualTo(expected));
        }
    }

    [Test]
    public void TheEndOfTheStreamReturnsTheBytesReadSoFar()
    {
        (Socket sender, Socket receiver) = LoopbackTcpPair.Connect();
        using (receiver)
        {
            sender.Send(new byte[1000]);
            sender.Dispose();
            var buffer = new byte[4096];
            Assert.That(WholeReceive.ReceiveAll(receiver.SafeHandle, buffer), Is.EqualTo(1000));
            Assert.That(WholeReceive.ReceiveAll(receiver.SafeHandle, buffer), Is.EqualTo(0), "a clean end reads nothing more");
        }
    }

    [Test]
    public void AShutdownWakesAReaderWaitingForTheRest()
    {
        (Socket sender, Socket receiver) = LoopbackTcpPair.Connect();
        using (sender)
        using (receiver)
        {
            sender.Send(new byte[10]);
            var buffer = new byte[1 << 20];
            Task<int> reading = Task.Run(() => WholeReceive.ReceiveAll(receiver.SafeHandle, buffer));
            Thread.Sleep(100);
            Assert.That(reading.IsCompleted, Is.False, "the reader waits for the whole buffer");
            receiver.Shutdown(SocketShutdown.Both);
            Assert.That(reading.Wait(TimeSpan.FromSeconds(30)), Is.True, "the shutdown ended the wait");
            Assert.That(reading.Result, Is.EqualTo(10));
        }
    }

    [Test]
    public void AResetConnectionFailsWithTheErrno()
    {
        (Socket sender, Socket receiver) = LoopbackTcpPair.Connect();
        using (receiver)
        {
            sender.LingerState = new LingerOption(true, 0); // closing sends a reset
            sender.Send(new byte[10]);
            sender.Dispose();
            Thread.Sleep(50);
            var error = Assert.Throws<NativeCallException>(() => WholeReceive.ReceiveAll(receiver.SafeHandle, new byte[1 << 20]));
            Assert.That(error!.Call, Is.EqualTo("recv"));
            Assert.That(error.Errno, Is.EqualTo(Errno.ECONNRESET));
        }
    }
}
