using System.IO.Pipes;
using System.Net;
using System.Net.Sockets;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Tests.Stream;

/// <summary>Writer → transport → reader, over memory, a trickling transport, a pipe and TCP.</summary>
[TestFixture]
public sealed class MigrationStreamRoundTripTests
{
    private const int PageSize = 4096;

    // A RAM-like stream: per page a be64 address|flags word and the page, with a counted
    // block name and assorted integers mixed in, plus one large buffer in the middle.
    private static void WriteWorkload(MigrationStreamWriter writer, int pages)
    {
        byte[] page = new byte[PageSize];
        writer.PutBe32(0x5145564d);
        writer.PutBe32(3);
        writer.PutCountedString("pc.ram");
        for (int i = 0; i < pages; i++)
        {
            FillPage(page, i);
            writer.PutBe64(((ulong)i * PageSize) | 0x08);
            writer.PutByte((byte)i);
            writer.PutSignedBe16((short)-i);
            writer.PutSignedBe32(-i * 3);
            writer.PutBuffer(page);
            if (i == pages / 2)
            {
                byte[] big = new byte[1024 * 1024];
                FillPage(big, i);
                writer.PutBuffer(big);
            }
        }

        writer.PutSignedBe64(long.MinValue);
        writer.PutByte(0);
    }

    private static void VerifyWorkload(MigrationStreamReader reader, int pages)
    {
        byte[] page = new byte[PageSize];
        byte[] expected = new byte[PageSize];
        Assert.That(reader.GetBe32(), Is.EqualTo(0x5145564d));
        Assert.That(reader.GetBe32(), Is.EqualTo(3));
        Assert.That(reader.GetCountedString(), Is.EqualTo("pc.ram"));
        for (int i = 0; i < pages; i++)
        {
            FillPage(expected, i);
            ulong word = reader.GetBe64();
            byte b = reader.GetByte();
            short s = reader.GetSignedBe16();
            int n = reader.GetSignedBe32();
            reader.ReadExactly(page);
            if (word != (((ulong)i * PageSize) | 0x08) || b != (byte)i || s != (short)-i || n != -i * 3
                || !page.AsSpan().SequenceEqual(expected))
            {
                Assert.Fail($"record {i} differs at offset {reader.Offset}");
            }

            if (i == pages / 2)
            {
                byte[] big = new byte[1024 * 1024];
                byte[] bigExpected = new byte[big.Length];
                FillPage(bigExpected, i);
                reader.ReadExactly(big);
                Assert.That(big.AsSpan().SequenceEqual(bigExpected), Is.True, "the large buffer");
            }
        }

        Assert.That(reader.GetSignedBe64(), Is.EqualTo(long.MinValue));
        Assert.That(reader.GetByte(), Is.Zero);
        Assert.That(reader.IsAtEnd, Is.True);
    }

    private static void FillPage(Span<byte> page, int seed)
    {
        for (int i = 0; i < page.Length; i++)
        {
            page[i] = (byte)((i >> 3) ^ seed ^ (i * 13));
        }
    }

    private static long WorkloadLength(int pages) =>
        4 + 4 + 7 + (long)pages * (8 + 1 + 2 + 4 + PageSize) + 1024 * 1024 + 8 + 1;

    [Test]
    public void MemoryAndTricklingTransportsGiveTheSameValues()
    {
        const int pages = 300;
        var sink = new MemoryStream();
        using (var writer = new MigrationStreamWriter(sink, leaveOpen: true, bufferSize: 64 * 1024))
        {
            WriteWorkload(writer, pages);
            Assert.That(writer.BytesWritten, Is.EqualTo(WorkloadLength(pages)));
        }

        byte[] bytes = sink.ToArray();
        Assert.That(bytes, Has.Length.EqualTo(WorkloadLength(pages)));

        using (var reader = new MigrationStreamReader(new MemoryStream(bytes)))
        {
            VerifyWorkload(reader, pages);
            Assert.That(reader.Offset, Is.EqualTo(bytes.Length));
        }

        var trickle = new TrickleStream(bytes, seed: 7);
        using (var reader = new MigrationStreamReader(trickle, bufferSize: 4096))
        {
            VerifyWorkload(reader, pages);
            Assert.That(reader.Offset, Is.EqualTo(bytes.Length));
        }

        Assert.That(trickle.ReadCalls, Is.GreaterThan(bytes.Length / 3), "the transport really trickled");
    }

    [Test]
    public void AnonymousPipeCarriesSeveralMiBBetweenThreads()
    {
        const int pages = 1024; // 4 MiB of pages plus 1 MiB
        using var server = new AnonymousPipeServerStream(PipeDirection.Out, HandleInheritability.None);
        using var client = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);

        long written = 0;
        var sender = Task.Run(() =>
        {
            try
            {
                using var writer = new MigrationStreamWriter(server, leaveOpen: true, bufferSize: 256 * 1024);
                WriteWorkload(writer, pages);
                written = writer.BytesWritten;
            }
            finally
            {
                server.Dispose(); // the reader sees the end of the stream
            }
        });

        using (var reader = new MigrationStreamReader(client, leaveOpen: true))
        {
            VerifyWorkload(reader, pages);
            Assert.That(reader.Offset, Is.EqualTo(WorkloadLength(pages)));
        }

        Assert.That(sender.Wait(TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(written, Is.EqualTo(WorkloadLength(pages)));
    }

    [Test]
    public void LoopbackTcpCarriesSeveralMiBBetweenThreads()
    {
        const int pages = 1024;
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var sender = Task.Run(() =>
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Connect(IPAddress.Loopback, port);
                using var writer = new MigrationStreamWriter(new NetworkStream(socket, ownsSocket: false));
                WriteWorkload(writer, pages);
                writer.Flush();
                socket.Shutdown(SocketShutdown.Send);
            });

            using Socket accepted = listener.AcceptSocket();
            using (var reader = new MigrationStreamReader(new NetworkStream(accepted, ownsSocket: false)))
            {
                VerifyWorkload(reader, pages);
                Assert.That(reader.Offset, Is.EqualTo(WorkloadLength(pages)));
            }

            Assert.That(sender.Wait(TimeSpan.FromSeconds(30)), Is.True);
        }
        finally
        {
            listener.Stop();
            listener.Dispose();
        }
    }

    [Test]
    public void BrokenPipeSurfacesAsAStickyWriterError()
    {
        var server = new AnonymousPipeServerStream(PipeDirection.Out, HandleInheritability.None);
        var client = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);
        client.Dispose();
        server.DisposeLocalCopyOfClientHandle();

        using var writer = new MigrationStreamWriter(server, bufferSize: 4096);
        var thrown = Assert.Throws<MigrationStreamException>(() => writer.PutBuffer(new byte[1024 * 1024]));

        Assert.That(thrown!.InnerException, Is.InstanceOf<IOException>());
        Assert.That(thrown.Offset, Is.Zero);
        Assert.That(writer.Error, Is.SameAs(thrown.InnerException));
    }
}
