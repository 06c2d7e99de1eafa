using MiniVmm.Native;

namespace MiniVmm.Native.Tests;

public sealed class FileDescriptorHandleTests
{
    [Test]
    public void CloseOnExecReadsBackAsSet()
    {
        using PipeEnds pipe = Pipe.Create(PipeFlags.None);
        Assert.That(pipe.Read.CloseOnExec, Is.False);
        pipe.Read.CloseOnExec = true;
        Assert.That(pipe.Read.CloseOnExec, Is.True);
        pipe.Read.CloseOnExec = false;
        Assert.That(pipe.Read.CloseOnExec, Is.False);
    }

    [Test]
    public void NonBlockingReadsBackAsSet()
    {
        using PipeEnds pipe = Pipe.Create();
        Assert.That(pipe.Read.NonBlocking, Is.False);
        pipe.Read.NonBlocking = true;
        Assert.That(pipe.Read.NonBlocking, Is.True);
        Assert.That(pipe.Read.GetStatusFlags() & 0x800, Is.EqualTo(0x800));
        pipe.Read.NonBlocking = false;
        Assert.That(pipe.Read.NonBlocking, Is.False);
    }

    [Test]
    public void DisposeTwiceIsHarmless()
    {
        PipeEnds pipe = Pipe.Create();
        pipe.Dispose();
        Assert.That(pipe.Dispose, Throws.Nothing);
        Assert.That(pipe.Read.IsClosed && pipe.Write.IsClosed, Is.True);
        Assert.That(() => pipe.Read.Read(new byte[1]), Throws.InstanceOf<ObjectDisposedException>());
    }

    [Test]
    public void DuplicateSharesTheOpenFileAndOutlivesTheOriginal()
    {
        using FileDescriptorHandle memfd = Memfd.Create("dup");
        memfd.WriteAll([1, 2, 3, 4]);
        FileDescriptorHandle duplicate;
        using (FileDescriptorHandle original = memfd.Duplicate())
        {
            duplicate = original.Duplicate();
            Assert.That(duplicate.Number, Is.Not.EqualTo(original.Number));
            Assert.That(duplicate.CloseOnExec, Is.True);
        }
        using (duplicate)
        {
            Assert.That(duplicate.Size, Is.EqualTo(4));
            duplicate.WriteAll([5]);
            Assert.That(memfd.Size, Is.EqualTo(5), "the write went on at the shared file position");
        }
    }

    [Test]
    public void FromBorrowedLeavesTheDescriptorOpenAndFromOwnedClosesIt()
    {
        using PipeEnds pipe = Pipe.Create(PipeFlags.CloseOnExec | PipeFlags.NonBlocking);
        int writeEnd = pipe.Write.Number;

        FileDescriptorHandle.FromBorrowed(writeEnd).Dispose();
        Assert.That(pipe.Read.TryRead(new byte[1], out _), Is.False, "write end still open: no data yet");

        pipe.Write.SetHandleAsInvalid();
        FileDescriptorHandle.FromOwned(writeEnd).Dispose();
        Assert.That(pipe.Read.Read(new byte[1]), Is.Zero, "write end closed: end of file");
    }

    [Test]
    public unsafe void PointerIoctlFillsTheArgument()
    {
        using PipeEnds pipe = Pipe.Create();
        pipe.Write.WriteAll(new byte[77]);
        int queued = -1;
        Assert.That(pipe.Read.Ioctl(Pipe.FIONREAD, &queued), Is.Zero);
        Assert.That(queued, Is.EqualTo(77));
    }
}
