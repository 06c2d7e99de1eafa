using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Tests.Stream;

[TestFixture]
public sealed class MigrationStreamWriterTests
{
    private static byte[] Write(Action<MigrationStreamWriter> body, int bufferSize = MigrationStreamWriter.DefaultBufferSize)
    {
        var sink = new MemoryStream();
        using (var writer = new MigrationStreamWriter(sink, leaveOpen: true, bufferSize))
        {
            body(writer);
        }

        return sink.ToArray();
    }

    [Test]
    public void EveryWidthIsBigEndian()
    {
        byte[] bytes = Write(w =>
        {
            w.PutByte(0xab);
            w.PutBe16(0x1234);
            w.PutBe32(0x5145564d);
            w.PutBe64(0x0102030405060708);
        });

        Assert.That(bytes, Is.EqualTo(new byte[]
        {
            0xab,
            0x12, 0x34,
            0x51, 0x45, 0x56, 0x4d,
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        }));
    }

    [Test]
    public void SignedValuesAreTwosComplement()
    {
        byte[] bytes = Write(w =>
        {
            w.PutSignedBe16(-2);
            w.PutSignedBe32(-1);
            w.PutSignedBe64(long.MinValue);
        });

        Assert.That(bytes, Is.EqualTo(new byte[]
        {
            0xff, 0xfe,
            0xff, 0xff, 0xff, 0xff,
            0x80, 0, 0, 0, 0, 0, 0, 0,
        }));
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(255)]
    public void CountedStringIsLengthByteThenBytes(int length)
    {
        string text = new('r', length);
        byte[] bytes = Write(w => w.PutCountedString(text));

        Assert.That(bytes, Has.Length.EqualTo(1 + length));
        Assert.That(bytes[0], Is.EqualTo(length));
        Assert.That(bytes.Skip(1).All(b => b == (byte)'r'), Is.True);
    }

    [Test]
    public void CountedStringOf256BytesIsRejected()
    {
        using var writer = new MigrationStreamWriter(new MemoryStream());

        Assert.That(() => writer.PutCountedString(new string('x', 256)), Throws.ArgumentException);
        Assert.That(() => writer.PutCountedString(new byte[256]), Throws.ArgumentException);
        Assert.That(writer.BytesWritten, Is.Zero, "nothing is written for a rejected string");
    }

    [Test]
    public void CountedStringLengthCountsUtf8Bytes()
    {
        using var writer = new MigrationStreamWriter(new MemoryStream());

        // 128 two-byte characters: 128 UTF-16 units but 256 UTF-8 bytes.
        Assert.That(() => writer.PutCountedString(new string('é', 128)), Throws.ArgumentException);
        byte[] bytes = Write(w => w.PutCountedString("ramé"));
        Assert.That(bytes, Is.EqualTo(new byte[] { 5, (byte)'r', (byte)'a', (byte)'m', 0xc3, 0xa9 }));
    }

    [Test]
    public void CountedStringFromRawBytes()
    {
        byte[] bytes = Write(w => w.PutCountedString("ram"u8));

        Assert.That(bytes, Is.EqualTo(new byte[] { 3, (byte)'r', (byte)'a', (byte)'m' }));
    }

    [Test]
    public void ValuesStraddlingTheBufferEndAreIntact()
    {
        // With a 4 KiB buffer and an odd start, many be64 values land across a drain.
        byte[] bytes = Write(
            w =>
            {
                w.PutByte(7);
                for (ulong i = 0; i < 3000; i++)
                {
                    w.PutBe64(i * 0x0101010101010101UL);
                    w.PutBe16((ushort)i);
                    w.PutBe32((uint)i);
                }
            },
            bufferSize: 4096);

        var expected = new MemoryStream();
        expected.WriteByte(7);
        Span<byte> scratch = stackalloc byte[8];
        for (ulong i = 0; i < 3000; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(scratch, i * 0x0101010101010101UL);
            expected.Write(scratch);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(scratch, (ushort)i);
            expected.Write(scratch[..2]);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(scratch, (uint)i);
            expected.Write(scratch[..4]);
        }

        Assert.That(bytes, Is.EqualTo(expected.ToArray()));
    }

    [Test]
    public void LargeBuffersBypassTheInternalBufferInOrder()
    {
        var random = new Random(42);
        byte[] big1 = new byte[1024 * 1024];
        byte[] big2 = new byte[1024 * 1024 + 17];
        byte[] page = new byte[4096];
        random.NextBytes(big1);
        random.NextBytes(big2);
        random.NextBytes(page);

        var transport = new RecordingWriteStream();
        var expected = new MemoryStream();
        using (var writer = new MigrationStreamWriter(transport, leaveOpen: true, bufferSize: 256 * 1024))
        {
            writer.PutBe32(0xdeadbeef);
            expected.Write([0xde, 0xad, 0xbe, 0xef]);
            writer.PutBuffer(big1);
            expected.Write(big1);
            Assert.That(writer.BytesWritten, Is.EqualTo(4 + big1.Length));

            for (int i = 0; i < 100; i++)
            {
                writer.PutByte((byte)i);
                expected.WriteByte((byte)i);
                writer.PutBuffer(page);
                expected.Write(page);
            }

            writer.PutBuffer(big2);
            expected.Write(big2);
            writer.PutBuffer(big1.AsSpan(0, 100));
            expected.Write(big1.AsSpan(0, 100));
            Assert.That(writer.BytesWritten, Is.EqualTo(expected.Length));
        }

        Assert.That(transport.Written, Is.EqualTo(expected.ToArray()));
        Assert.That(transport.WriteSizes, Does.Contain(big1.Length), "the 1 MiB buffer went to the transport in one write");
        Assert.That(transport.WriteSizes, Does.Contain(big2.Length));
        Assert.That(transport.WriteSizes.Max(), Is.EqualTo(big2.Length));
    }

    [Test]
    public void MidSizedBufferLargerThanTheFreeSpaceIsSplitAcrossADrain()
    {
        byte[] chunk = Enumerable.Range(0, 3000).Select(i => (byte)(i * 7)).ToArray();
        var transport = new RecordingWriteStream();
        using (var writer = new MigrationStreamWriter(transport, leaveOpen: true, bufferSize: 4096))
        {
            writer.PutBuffer(chunk);
            writer.PutBuffer(chunk);
            writer.PutBuffer(chunk);
        }

        Assert.That(transport.Written, Is.EqualTo(chunk.Concat(chunk).Concat(chunk).ToArray()));
        Assert.That(transport.WriteSizes, Is.EqualTo(new[] { 4096, 4096, 9000 - 8192 }));
    }

    [Test]
    public void BytesWrittenCountsBufferedAndDeliveredBytes()
    {
        var transport = new RecordingWriteStream();
        using var writer = new MigrationStreamWriter(transport, leaveOpen: true);

        writer.PutBe32(1);
        writer.PutByte(2);
        Assert.That(writer.BytesWritten, Is.EqualTo(5));
        Assert.That(writer.BytesBuffered, Is.EqualTo(5));
        Assert.That(transport.Length, Is.Zero, "nothing reaches the transport before a flush");

        writer.Flush();
        Assert.That(transport.Length, Is.EqualTo(5));
        Assert.That(transport.FlushCalls, Is.EqualTo(1));
        Assert.That(writer.BytesBuffered, Is.Zero);

        writer.PutBuffer(new byte[100_000]);
        writer.PutCountedString("abc");
        Assert.That(writer.BytesWritten, Is.EqualTo(5 + 100_000 + 4));
    }

    [Test]
    public void TransportFailureIsStickyAndTheTransportIsNotCalledAgain()
    {
        var transport = new RecordingWriteStream(failOnWrite: 2);
        var writer = new MigrationStreamWriter(transport, leaveOpen: true, bufferSize: 4096);

        writer.PutBuffer(new byte[4096]); // as large as the buffer: direct, write 1 succeeds
        writer.PutByte(1);
        writer.PutBuffer(new byte[4095]); // fills the buffer
        var first = Assert.Throws<MigrationStreamException>(() => writer.PutByte(2)); // drain: write 2 throws

        Assert.That(transport.Thrown, Is.Not.Null);
        Assert.That(first!.InnerException, Is.SameAs(transport.Thrown));
        Assert.That(first.Offset, Is.EqualTo(4096), "the failed write began after the first 4096 bytes");
        Assert.That(first.Message, Does.Contain("at offset 4096 (0x1000)"));
        Assert.That(writer.HasError, Is.True);
        Assert.That(writer.Error, Is.SameAs(transport.Thrown));

        writer.SetError(new InvalidOperationException("later"));
        Assert.That(writer.Error, Is.SameAs(transport.Thrown), "the first error wins");

        var calls = new Action[]
        {
            () => writer.PutByte(1),
            () => writer.PutBe16(1),
            () => writer.PutBe32(1),
            () => writer.PutBe64(1),
            () => writer.PutCountedString("x"),
            () => writer.PutBuffer(new byte[1]),
            () => writer.PutBuffer(new byte[1 << 20]),
            () => writer.PutBuffer([]),
            writer.Flush,
        };
        foreach (Action call in calls)
        {
            var later = Assert.Throws<MigrationStreamException>(() => call());
            Assert.That(later!.InnerException, Is.SameAs(transport.Thrown));
        }

        Assert.That(writer.IsRateLimited, Is.True, "a failed stream reports itself rate limited, as QEMU does");
        writer.Dispose();
        writer.Dispose();
        Assert.That(transport.WriteCalls, Is.EqualTo(2));
        Assert.That(transport.FlushCalls, Is.Zero);
    }

    [Test]
    public void SetErrorStopsTheWriterWithoutTouchingTheTransport()
    {
        var transport = new RecordingWriteStream();
        var writer = new MigrationStreamWriter(transport);
        var cancel = new OperationCanceledException("migration cancelled");

        writer.PutBe64(1);
        writer.SetError(cancel);
        writer.SetError(new IOException("second"));

        Assert.That(writer.Error, Is.SameAs(cancel));
        var thrown = Assert.Throws<MigrationStreamException>(() => writer.PutBe64(2));
        Assert.That(thrown!.InnerException, Is.SameAs(cancel));
        Assert.That(thrown.Offset, Is.EqualTo(8));

        writer.Dispose();
        Assert.That(transport.WriteCalls, Is.Zero, "a failed writer does not flush on dispose");
        Assert.That(transport.IsDisposed, Is.True, "an owned transport is still released");
    }

    [Test]
    public void RateLimitAccounting()
    {
        using var writer = new MigrationStreamWriter(System.IO.Stream.Null);
        Assert.That(writer.RateLimitBytes, Is.Zero);
        writer.PutBuffer(new byte[1000]);
        Assert.That(writer.IsRateLimited, Is.False, "0 is unlimited");

        writer.RateLimitBytes = 100;
        Assert.That(writer.BytesInCurrentWindow, Is.EqualTo(1000));
        Assert.That(writer.IsRateLimited, Is.True);

        writer.StartNewRateWindow();
        Assert.That(writer.BytesInCurrentWindow, Is.Zero);
        Assert.That(writer.IsRateLimited, Is.False);

        writer.PutBuffer(new byte[99]);
        writer.PutByte(0);
        Assert.That(writer.BytesInCurrentWindow, Is.EqualTo(100));
        Assert.That(writer.IsRateLimited, Is.False, "QEMU 7.2 limits only once the quota is exceeded");
        writer.PutByte(0);
        Assert.That(writer.IsRateLimited, Is.True);

        writer.StartNewRateWindow();
        writer.AccountForRateLimit(101);
        Assert.That(writer.BytesInCurrentWindow, Is.EqualTo(101));
        Assert.That(writer.IsRateLimited, Is.True, "bytes sent elsewhere count too");

        writer.StartNewRateWindow();
        writer.PutBuffer(new byte[2 << 20]); // direct write
        Assert.That(writer.BytesInCurrentWindow, Is.EqualTo(2 << 20));
        writer.RateLimitBytes = long.MaxValue;
        Assert.That(writer.IsRateLimited, Is.False, "long.MaxValue is unlimited");

        Assert.That(() => writer.RateLimitBytes = -1, Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void DisposeFlushesAndReleasesAnOwnedTransport()
    {
        var transport = new RecordingWriteStream();
        var writer = new MigrationStreamWriter(transport);
        writer.PutBe32(0x5145564d);

        writer.Dispose();
        writer.Dispose();

        Assert.That(transport.Written, Is.EqualTo(new byte[] { 0x51, 0x45, 0x56, 0x4d }));
        Assert.That(transport.WriteCalls, Is.EqualTo(1));
        Assert.That(transport.IsDisposed, Is.True);
        Assert.That(() => writer.PutByte(1), Throws.InstanceOf<ObjectDisposedException>());
        Assert.That(() => writer.PutBuffer(new byte[1 << 20]), Throws.InstanceOf<ObjectDisposedException>());
    }

    [Test]
    public void LeaveOpenKeepsTheTransport()
    {
        var transport = new RecordingWriteStream();
        using (var writer = new MigrationStreamWriter(transport, leaveOpen: true))
        {
            writer.PutByte(1);
        }

        Assert.That(transport.IsDisposed, Is.False);
        Assert.That(transport.Written, Is.EqualTo(new byte[] { 1 }));
    }

    [Test]
    public void DisposeReportsAFlushFailureOnceAndStillReleasesTheTransport()
    {
        var transport = new RecordingWriteStream(failOnWrite: 1);
        var writer = new MigrationStreamWriter(transport);
        writer.PutByte(1);

        var thrown = Assert.Throws<MigrationStreamException>(writer.Dispose);
        Assert.That(thrown!.InnerException, Is.SameAs(transport.Thrown));
        Assert.That(transport.IsDisposed, Is.True);
        Assert.That(writer.Dispose, Throws.Nothing);
    }

    [Test]
    public void ConstructorValidatesItsArguments()
    {
        Assert.That(() => new MigrationStreamWriter(null!), Throws.ArgumentNullException);
        Assert.That(() => new MigrationStreamWriter(new MemoryStream([], writable: false)), Throws.ArgumentException);
        Assert.That(() => new MigrationStreamWriter(new MemoryStream(), bufferSize: 100), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
