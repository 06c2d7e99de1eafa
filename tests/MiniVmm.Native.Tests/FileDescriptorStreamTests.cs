using System.Text;
using MiniVmm.Native;

namespace MiniVmm.Native.Tests;

public sealed class FileDescriptorStreamTests
{
    [Test]
    public void RoundTripsThroughAPipe()
    {
        PipeEnds pipe = Pipe.Create();
        using var reader = new StreamReader(new FileDescriptorStream(pipe.Read, FileAccess.Read), Encoding.UTF8);
        using (var writer = new StreamWriter(new FileDescriptorStream(pipe.Write, FileAccess.Write), Encoding.UTF8))
        {
            writer.WriteLine("migration stream");
            writer.Write("second line ✓");
        }
        Assert.That(pipe.Write.IsClosed, Is.True, "the writing stream owned its end");
        Assert.That(reader.ReadLine(), Is.EqualTo("migration stream"));
        Assert.That(reader.ReadToEnd(), Is.EqualTo("second line ✓"));
    }

    [Test]
    public void StreamsAMappedMemfdThroughAPipe()
    {
        using FileDescriptorHandle memfd = Memfd.Create("stream-source");
        byte[] content = new byte[200_000];
        new Random(3).NextBytes(content);
        memfd.WriteAll(content);
        using var mapping = MemoryMapping.Map(memfd, 0, content.Length, MemoryProtection.Read, MappingFlags.Shared);
        Assert.That(mapping.GetSpan(0, content.Length).SequenceEqual(content), Is.True);

        using PipeEnds pipe = Pipe.Create();
        var writing = Task.Run(() =>
        {
            using var output = new FileDescriptorStream(pipe.Write, FileAccess.Write);
            output.Write(mapping.GetSpan(0, content.Length));
        });
        using var input = new FileDescriptorStream(pipe.Read, FileAccess.Read, ownsHandle: false);
        using var copy = new MemoryStream();
        input.CopyTo(copy);
        Assert.That(writing.Wait(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(copy.ToArray(), Is.EqualTo(content));
    }

    [Test]
    public void DirectionAndSeekingAreEnforced()
    {
        using PipeEnds pipe = Pipe.Create();
        using var input = new FileDescriptorStream(pipe.Read, FileAccess.Read, ownsHandle: false);
        Assert.That(input.CanRead && !input.CanWrite && !input.CanSeek, Is.True);
        Assert.That(() => input.Write([1]), Throws.InstanceOf<NotSupportedException>());
        Assert.That(() => input.Position, Throws.InstanceOf<NotSupportedException>());
        Assert.That(() => input.Seek(0, SeekOrigin.Begin), Throws.InstanceOf<NotSupportedException>());
    }

    [Test]
    public void BorrowingStreamLeavesTheHandleOpenAndDisposesTwice()
    {
        using PipeEnds pipe = Pipe.Create();
        var output = new FileDescriptorStream(pipe.Write, FileAccess.Write, ownsHandle: false);
        output.WriteByte(9);
        output.Dispose();
        Assert.That(output.Dispose, Throws.Nothing);
        Assert.That(pipe.Write.IsClosed, Is.False);
        Assert.That(() => output.WriteByte(1), Throws.InstanceOf<ObjectDisposedException>());
        using var input = new FileDescriptorStream(pipe.Read, FileAccess.Read, ownsHandle: false);
        Assert.That(input.ReadByte(), Is.EqualTo(9));
    }
}
