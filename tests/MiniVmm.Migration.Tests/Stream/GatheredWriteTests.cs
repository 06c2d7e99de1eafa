using System.Net;
using System.Net.Sockets;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Stream;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Migration.Tests.Stream;

/// <summary>
/// <see cref="MigrationStreamWriter.PutBufferByReference"/> over a real TCP socket: guest pages
/// go out without a copy, interleaved with buffered headers, in stream order.
/// </summary>
public sealed class GatheredWriteTests
{
    [Test]
    public void PagesByReferenceAndBufferedHeadersArriveInStreamOrder()
    {
        // 3000 pages: several full gathered sends (1024 buffers each) and a 1 MiB buffer that never fills.
        const int pages = 3000;
        using var memory = GuestMemory.ForMachineNone(pages * (long)RamBlock.PageSize);
        RamBlock block = memory.Blocks[0];
        var random = new Random(11);
        byte[] page = new byte[RamBlock.PageSize];
        for (long p = 0; p < pages; p++)
        {
            random.NextBytes(page);
            page.CopyTo(block.GetPage(p));
        }

        var expected = new MemoryStream();
        using (var reference = new MigrationStreamWriter(expected, leaveOpen: true))
        {
            WriteRecords(reference, block, pages);
        }

        (Socket sender, Socket receiver) = LoopbackTcpPair.Connect();
        using var receiving = new NetworkStream(receiver, ownsSocket: true);
        var received = new MemoryStream();
        Task reading = Task.Run(() => receiving.CopyTo(received));
        using (var writer = new MigrationStreamWriter(new NetworkStream(sender, ownsSocket: true)))
        {
            Assert.That(writer.SendsByReference, Is.True, "a socket transport sends pages by reference");
            WriteRecords(writer, block, pages);
            Assert.That(writer.BytesWritten, Is.EqualTo(expected.Length), "queued pages count as written");
        }

        Assert.That(reading.Wait(TimeSpan.FromMinutes(1)), Is.True);
        Assert.That(received.ToArray(), Is.EqualTo(expected.ToArray()));
    }

    [Test]
    public void APeerThatGoesAwayFailsTheWriterWithItsOffsetAndTheErrorSticks()
    {
        using var memory = GuestMemory.ForMachineNone(256L << 20);
        RamBlock block = memory.Blocks[0];
        (Socket sender, Socket receiver) = LoopbackTcpPair.Connect();
        receiver.Dispose();
        using var writer = new MigrationStreamWriter(new NetworkStream(sender, ownsSocket: true));

        var error = Assert.Throws<MigrationStreamException>(() => WriteRecords(writer, block, (int)block.PageCount));
        Assert.That(error!.Message, Does.Contain("transport write failed"));
        Assert.That(writer.HasError, Is.True);
        Assert.Throws<MigrationStreamException>(() => writer.PutBufferByReference(block.GetPage(0)));
    }

    [Test]
    public void AnythingButASocketCopiesAsBefore()
    {
        using var memory = GuestMemory.ForMachineNone(16 * (long)RamBlock.PageSize);
        var sink = new MemoryStream();
        using (var writer = new MigrationStreamWriter(sink, leaveOpen: true))
        {
            Assert.That(writer.SendsByReference, Is.False);
            writer.PutBufferByReference(memory.Blocks[0].GetPage(3));
        }

        Assert.That(sink.Length, Is.EqualTo(RamBlock.PageSize));
    }

    private static void WriteRecords(MigrationStreamWriter writer, RamBlock block, int pages)
    {
        for (long p = 0; p < pages; p++)
        {
            writer.PutBe64((ulong)(p << RamBlock.PageShift) | 0x8);
            writer.PutBufferByReference(block.GetPage(p));
            if (p % 700 == 0)
            {
                writer.Flush(); // flushes in the middle of a gathered batch too
            }
        }

        writer.Flush();
    }
}
