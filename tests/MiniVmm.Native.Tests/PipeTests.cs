using MiniVmm.Native;

namespace MiniVmm.Native.Tests;

public sealed class PipeTests
{
    [Test]
    public void CarriesThirtyTwoMebibytesIntact()
    {
        const int total = 32 << 20;
        byte[] pattern = new byte[total];
        new Random(42).NextBytes(pattern);
        using PipeEnds pipe = Pipe.Create();

        Task writer = Task.Factory.StartNew(() =>
        {
            try
            {
                var sizes = new Random(7);
                for (int position = 0; position < total;)
                {
                    int chunk = Math.Min(total - position, sizes.Next(1, 256 << 10));
                    pipe.Write.WriteAll(pattern.AsSpan(position, chunk));
                    position += chunk;
                }
            }
            finally
            {
                pipe.Write.Dispose();
            }
        }, TaskCreationOptions.LongRunning);

        byte[] received = new byte[total];
        int length = 0;
        byte[] buffer = new byte[100_000];
        for (int count; (count = pipe.Read.Read(buffer)) > 0; length += count)
        {
            Assert.That(length + count, Is.LessThanOrEqualTo(total), "more bytes than were written");
            buffer.AsSpan(0, count).CopyTo(received.AsSpan(length));
        }

        Assert.That(writer.Wait(TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(length, Is.EqualTo(total));
        Assert.That(received.AsSpan().SequenceEqual(pattern), Is.True);
    }

    [Test]
    public void FionreadReportsTheQueuedByteCount()
    {
        using PipeEnds pipe = Pipe.Create();
        Assert.That(Pipe.QueuedBytes(pipe.Read), Is.Zero);
        pipe.Write.WriteAll(new byte[1234]);
        Assert.That(Pipe.QueuedBytes(pipe.Read), Is.EqualTo(1234));
        pipe.Read.ReadExactly(new byte[1000]);
        Assert.That(Pipe.QueuedBytes(pipe.Read), Is.EqualTo(234));
    }

    [Test]
    public void EmptyNonBlockingReadFailsWithEagain()
    {
        using PipeEnds pipe = Pipe.Create(PipeFlags.CloseOnExec | PipeFlags.NonBlocking);
        var error = Assert.Throws<NativeCallException>(() => pipe.Read.Read(new byte[16]));
        Assert.That(error!.Call, Is.EqualTo("read"));
        Assert.That(error.Errno, Is.EqualTo(Errno.EAGAIN));
        Assert.That(pipe.Read.TryRead(new byte[16], out int count), Is.False);
        Assert.That(count, Is.Zero);
    }

    [Test]
    public void ReadReturnsZeroAfterTheWriterCloses()
    {
        using PipeEnds pipe = Pipe.Create();
        pipe.Write.WriteAll([1, 2, 3]);
        pipe.Write.Dispose();
        byte[] buffer = new byte[8];
        Assert.That(pipe.Read.Read(buffer), Is.EqualTo(3));
        Assert.That(pipe.Read.Read(buffer), Is.Zero);
    }

    [Test]
    public void ReadExactlyNamesTheMissingByteCount()
    {
        using PipeEnds pipe = Pipe.Create();
        pipe.Write.WriteAll(new byte[10]);
        pipe.Write.Dispose();
        var error = Assert.Throws<EndOfStreamException>(() => pipe.Read.ReadExactly(new byte[16]));
        Assert.That(error!.Message, Does.Contain("6 of 16 bytes missing"));
    }

    [Test]
    public void WriteWithoutReaderFailsWithEpipe()
    {
        using PipeEnds pipe = Pipe.Create();
        pipe.Read.Dispose();
        var error = Assert.Throws<NativeCallException>(() => pipe.Write.WriteAll([1]));
        Assert.That(error!.ErrnoName, Is.EqualTo("EPIPE"));
    }
}
