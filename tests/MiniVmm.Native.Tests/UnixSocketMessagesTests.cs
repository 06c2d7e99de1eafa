using System.Net.Sockets;
using System.Text;
using MiniVmm.Native;

namespace MiniVmm.Native.Tests;

public sealed class UnixSocketMessagesTests
{
    [Test]
    public void APassedPipeEndArrivesWithTheDataAndWritesIntoTheOriginalPipe()
    {
        using UnixSocketPair sockets = UnixSocketPair.Create();
        using PipeEnds pipe = Pipe.Create();

        int sent = UnixSocketMessages.Send(sockets.First, "getfd"u8, [pipe.Write.Number]);
        Assert.That(sent, Is.EqualTo(5));

        var descriptors = new List<FileDescriptorHandle>();
        byte[] buffer = new byte[64];
        int received = UnixSocketMessages.Receive(sockets.Second, buffer, descriptors);
        try
        {
            Assert.That(Encoding.ASCII.GetString(buffer, 0, received), Is.EqualTo("getfd"));
            Assert.That(descriptors, Has.Count.EqualTo(1));
            FileDescriptorHandle copy = descriptors[0];
            Assert.That(copy.Number, Is.Not.EqualTo(pipe.Write.Number), "the receiver gets a new descriptor number");
            Assert.That(copy.CloseOnExec, Is.True, "MSG_CMSG_CLOEXEC");

            copy.WriteAll("through the copy"u8);
            byte[] read = new byte[16];
            pipe.Read.ReadExactly(read);
            Assert.That(Encoding.ASCII.GetString(read), Is.EqualTo("through the copy"));
        }
        finally
        {
            descriptors.ForEach(d => d.Dispose());
        }
    }

    [Test]
    public void SeveralDescriptorsArriveInTheOrderSent()
    {
        using UnixSocketPair sockets = UnixSocketPair.Create();
        PipeEnds[] pipes = [Pipe.Create(), Pipe.Create(), Pipe.Create()];
        try
        {
            UnixSocketMessages.Send(sockets.First, "x"u8, pipes.Select(p => p.Write.Number).ToArray());
            var descriptors = new List<FileDescriptorHandle>();
            Assert.That(UnixSocketMessages.Receive(sockets.Second, new byte[8], descriptors), Is.EqualTo(1));
            Assert.That(descriptors, Has.Count.EqualTo(3));
            for (int i = 0; i < 3; i++)
            {
                descriptors[i].WriteAll([(byte)(10 + i)]);
                descriptors[i].Dispose();
                byte[] one = new byte[1];
                pipes[i].Read.ReadExactly(one);
                Assert.That(one[0], Is.EqualTo(10 + i));
            }
        }
        finally
        {
            foreach (PipeEnds pipe in pipes)
            {
                pipe.Dispose();
            }
        }
    }

    [Test]
    public void DataWithoutDescriptorsAddsNone()
    {
        using UnixSocketPair sockets = UnixSocketPair.Create();
        UnixSocketMessages.Send(sockets.First, "plain"u8, []);
        var descriptors = new List<FileDescriptorHandle>();
        Assert.That(UnixSocketMessages.Receive(sockets.Second, new byte[8], descriptors), Is.EqualTo(5));
        Assert.That(descriptors, Is.Empty);
    }

    [Test]
    public void TooManyDescriptorsIsAnErrorNamingTheTruncation()
    {
        using UnixSocketPair sockets = UnixSocketPair.Create();
        using PipeEnds pipe = Pipe.Create();
        int[] many = Enumerable.Repeat(pipe.Write.Number, UnixSocketMessages.MaxReceivedDescriptors + 4).ToArray();
        UnixSocketMessages.Send(sockets.First, "x"u8, many);

        var descriptors = new List<FileDescriptorHandle>();
        var error = Assert.Throws<IOException>(() => UnixSocketMessages.Receive(sockets.Second, new byte[8], descriptors));
        Assert.That(error!.Message, Does.Contain("MSG_CTRUNC"));
        Assert.That(descriptors, Is.Empty, "the descriptors that fit were closed, not handed out");
    }

    [Test]
    public void NothingToReadIsReportedAsEagainOrFalse()
    {
        using UnixSocketPair sockets = UnixSocketPair.Create();
        var descriptors = new List<FileDescriptorHandle>();
        Assert.That(UnixSocketMessages.TryReceive(sockets.Second, new byte[8], descriptors, out int count, dontWait: true), Is.False);
        Assert.That(count, Is.Zero);
        var error = Assert.Throws<NativeCallException>(
            () => UnixSocketMessages.Receive(sockets.Second, new byte[8], descriptors, dontWait: true));
        Assert.That(error!.Call, Is.EqualTo("recvmsg"));
        Assert.That(error.Errno, Is.EqualTo(Errno.EAGAIN));
    }

    [Test]
    public void AClosedPeerReadsAsEndOfStream()
    {
        using UnixSocketPair sockets = UnixSocketPair.Create();
        sockets.First.Dispose();
        Assert.That(UnixSocketMessages.Receive(sockets.Second, new byte[8], []), Is.Zero);
    }

    [Test]
    public void DescriptorsWithoutDataAreRefused()
    {
        using UnixSocketPair sockets = UnixSocketPair.Create();
        Assert.Throws<ArgumentException>(() => UnixSocketMessages.Send(sockets.First, [], [sockets.First.Number]));
    }

    [Test]
    public async Task WorksOnDotNetSocketsOfAListener()
    {
        string path = Path.Combine(Path.GetTempPath(), $"minivmm-scm-{Environment.ProcessId}-{Guid.NewGuid():N}.sock");
        try
        {
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await client.ConnectAsync(new UnixDomainSocketEndPoint(path), timeout.Token);
            using Socket server = await listener.AcceptAsync(timeout.Token);
            using PipeEnds pipe = Pipe.Create();

            UnixSocketMessages.Send(client.SafeHandle, "{\"execute\": \"getfd\"}"u8, [pipe.Write.Number]);

            // A zero-byte receive waits for readiness without consuming anything.
            Assert.That(await server.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, timeout.Token), Is.Zero);
            var descriptors = new List<FileDescriptorHandle>();
            byte[] buffer = new byte[64];
            Assert.That(UnixSocketMessages.TryReceive(server.SafeHandle, buffer, descriptors, out int count, dontWait: true), Is.True);
            Assert.That(Encoding.ASCII.GetString(buffer, 0, count), Is.EqualTo("{\"execute\": \"getfd\"}"));
            Assert.That(descriptors, Has.Count.EqualTo(1));
            using (FileDescriptorHandle copy = descriptors[0])
            {
                copy.WriteAll("ok"u8);
            }

            byte[] read = new byte[2];
            pipe.Read.ReadExactly(read);
            Assert.That(read, Is.EqualTo("ok"u8.ToArray()));
            Assert.That(UnixSocketMessages.TryReceive(server.SafeHandle, buffer, descriptors, out _, dontWait: true), Is.False);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
