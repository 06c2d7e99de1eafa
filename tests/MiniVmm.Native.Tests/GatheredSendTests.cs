using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Native.Tests;

public sealed unsafe class GatheredSendTests
{
    [Test]
    public void ThousandsOfBuffersArriveInOrderThroughAFullNonblockingSocket()
    {
        // 3000 buffers of odd sizes: more than one sendmsg takes, and far more than the socket
        // buffer holds, so partial sends and waits for room both happen.
        const int count = 3000;
        int[] sizes = [.. Enumerable.Range(0, count).Select(i => 1 + (i * 7919 % 5000))];
        long total = sizes.Sum(s => (long)s);
        byte* memory = (byte*)NativeMemory.Alloc((nuint)total);
        try
        {
            var expected = new byte[total];
            new Random(7).NextBytes(expected);
            expected.CopyTo(new Span<byte>(memory, (int)total));
            var vectors = new IoVector[count];
            long at = 0;
            for (int i = 0; i < count; i++)
            {
                vectors[i] = new IoVector(memory + at, (nuint)sizes[i]);
                at += sizes[i];
            }

            (Socket sender, Socket receiver) = LoopbackTcpPair.Connect();
            using (sender)
            using (receiver)
            {
                sender.Blocking = false;
                sender.SendBufferSize = 16 << 10;
                var received = new byte[total];
                Task reading = Task.Run(() =>
                {
                    int got = 0;
                    while (got < total)
                    {
                        Thread.Sleep(got % 3 == 0 ? 1 : 0); // a slow reader keeps the sender waiting for room
                        int n = receiver.Receive(received, got, (int)Math.Min(8192, total - got), SocketFlags.None);
                        Assert.That(n, Is.GreaterThan(0), "the sender closed early");
                        got += n;
                    }
                });

                GatheredSend.SendAll(sender.SafeHandle, vectors);
                Assert.That(reading.Wait(TimeSpan.FromMinutes(1)), Is.True, "the reader got every byte");
                Assert.That(received, Is.EqualTo(expected));
            }
        }
        finally
        {
            NativeMemory.Free(memory);
        }
    }

    [Test]
    public void ASendToAClosedPeerFailsWithTheErrnoInsteadOfKillingTheProcess()
    {
        (Socket sender, Socket receiver) = LoopbackTcpPair.Connect();
        using (sender)
        {
            receiver.Dispose();
            const int size = 1 << 20;
            byte* data = (byte*)NativeMemory.AllocZeroed(size);
            try
            {
                var vectors = new IoVector[1];
                var error = Assert.Throws<NativeCallException>(() =>
                {
                    // The first sends may still be accepted; the reset shows on a later one.
                    for (int i = 0; i < 64; i++)
                    {
                        vectors[0] = new IoVector(data, size);
                        GatheredSend.SendAll(sender.SafeHandle, vectors);
                    }
                });
                Assert.That(error!.Call, Is.EqualTo("sendmsg"));
                Assert.That(error.Errno, Is.EqualTo(Errno.EPIPE).Or.EqualTo(Errno.ECONNRESET));
            }
            finally
            {
                NativeMemory.Free(data);
            }
        }
    }
}
