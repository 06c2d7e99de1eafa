using System.Diagnostics;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Tests.Stream;

[TestFixture]
public sealed class MigrationStreamReaderTests
{
    /// <summary>One primitive read: the call, its name in error messages and its size.</summary>
    public sealed record Primitive(string Call, string What, int Size, Action<MigrationStreamReader> Read)
    {
        public override string ToString() => Call;
    }

    public static IEnumerable<Primitive> Primitives()
    {
        yield return new("GetByte", "u8", 1, r => r.GetByte());
        yield return new("GetBe16", "be16", 2, r => r.GetBe16());
        yield return new("GetSignedBe16", "be16", 2, r => r.GetSignedBe16());
        yield return new("GetBe32", "be32", 4, r => r.GetBe32());
        yield return new("GetSignedBe32", "be32", 4, r => r.GetSignedBe32());
        yield return new("GetBe64", "be64", 8, r => r.GetBe64());
        yield return new("GetSignedBe64", "be64", 8, r => r.GetSignedBe64());
        yield return new("ReadExactly4K", "buffer", 4096, r => r.ReadExactly(new byte[4096]));
        yield return new("ReadExactlyDirect", "ram page", 300_000, r => r.ReadExactly(new byte[300_000], "ram page"));
        yield return new("Skip", "skipped bytes", 70_000, r => r.Skip(70_000));
        yield return new("ReadBytesChunked", "vmdesc", 200_000, r => r.ReadBytes(200_000, "vmdesc"));
        yield return new("ReadBytesSmall", "device blob", 1000, r => r.ReadBytes(1000, "device blob"));
    }

    public static IEnumerable<bool> Trickle() => [false, true];

    private static System.IO.Stream Transport(byte[] data, bool trickle) =>
        trickle ? new TrickleStream(data) : new MemoryStream(data, writable: false);

    private static byte[] Pattern(int length)
    {
        byte[] data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = (byte)(i * 31 + 7);
        }

        return data;
    }

    [Test]
    public void ReadsEveryWidthBigEndian([ValueSource(nameof(Trickle))] bool trickle)
    {
        byte[] data =
        [
            0xab,
            0x12, 0x34,
            0x51, 0x45, 0x56, 0x4d,
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
            0xff, 0xfe,
            0xff, 0xff, 0xff, 0xff,
            0x80, 0, 0, 0, 0, 0, 0, 0,
        ];
        using var reader = new MigrationStreamReader(Transport(data, trickle));

        Assert.That(reader.GetByte(), Is.EqualTo(0xab));
        Assert.That(reader.GetBe16(), Is.EqualTo(0x1234));
        Assert.That(reader.GetBe32(), Is.EqualTo(0x5145564d));
        Assert.That(reader.GetBe64(), Is.EqualTo(0x0102030405060708));
        Assert.That(reader.GetSignedBe16(), Is.EqualTo(-2));
        Assert.That(reader.GetSignedBe32(), Is.EqualTo(-1));
        Assert.That(reader.GetSignedBe64(), Is.EqualTo(long.MinValue));
        Assert.That(reader.Offset, Is.EqualTo(data.Length));
        Assert.That(reader.IsAtEnd, Is.True);
    }

    [Test]
    public void TruncationAtEveryPrimitiveReportsTheExactOffset(
        [ValueSource(nameof(Primitives))] Primitive primitive,
        [ValueSource(nameof(Trickle))] bool trickle)
    {
        const int prefix = 4242;
        int got = primitive.Size - 1;
        using var reader = new MigrationStreamReader(Transport(Pattern(prefix + got), trickle), bufferSize: 4096);
        reader.Skip(prefix - 2);
        reader.GetBe16();

        var thrown = Assert.Throws<MigrationStreamTruncatedException>(() => primitive.Read(reader));

        string bytes = primitive.Size == 1 ? "byte" : "bytes";
        Assert.That(thrown!.Message, Is.EqualTo(
            $"unexpected end of stream at offset 4242 (0x1092) while reading {primitive.What} (needed {primitive.Size} {bytes}, got {got})"));
        Assert.That(thrown.Offset, Is.EqualTo(prefix));
        Assert.That(thrown.What, Is.EqualTo(primitive.What));
        Assert.That(thrown.BytesNeeded, Is.EqualTo(primitive.Size));
        Assert.That(thrown.BytesReceived, Is.EqualTo(got));
        Assert.That(reader.Error, Is.SameAs(thrown));
    }

    [Test]
    public void TruncatedCountedStringCountsTheLengthByte([ValueSource(nameof(Trickle))] bool trickle)
    {
        byte[] data = [9, 9, 9, 10, (byte)'r', (byte)'a', (byte)'m'];
        using var reader = new MigrationStreamReader(Transport(data, trickle));
        reader.Skip(3);

        var thrown = Assert.Throws<MigrationStreamTruncatedException>(() => reader.GetCountedString());

        Assert.That(thrown!.Message, Is.EqualTo(
            "unexpected end of stream at offset 3 (0x3) while reading counted string (needed 11 bytes, got 4)"));
    }

    [Test]
    public void AfterAFailureEveryCallThrowsWithTheFirstErrorInside()
    {
        var transport = new ScriptedReadStream([1, 2, 3]);
        using var reader = new MigrationStreamReader(transport);
        reader.GetBe16();
        var first = Assert.Throws<MigrationStreamTruncatedException>(() => reader.GetBe32());
        int requests = transport.RequestSizes.Count;

        var calls = new Action[]
        {
            () => reader.GetByte(),
            () => reader.GetBe16(),
            () => reader.GetBe32(),
            () => reader.GetBe64(),
            () => reader.GetCountedString(),
            () => reader.ReadExactly(new byte[1]),
            () => reader.ReadExactly(new byte[1 << 20]),
            () => reader.Skip(1),
            () => reader.Peek(1),
            () => reader.PeekByte(),
            () => _ = reader.IsAtEnd,
            () => reader.ReadBytes(5, "blob"),
        };
        foreach (Action call in calls)
        {
            var later = Assert.Throws<MigrationStreamException>(() => call());
            Assert.That(later!.InnerException, Is.SameAs(first));
            Assert.That(later.Offset, Is.EqualTo(2));
        }

        reader.SetError(new IOException("later"));
        Assert.That(reader.Error, Is.SameAs(first));
        Assert.That(transport.RequestSizes, Has.Count.EqualTo(requests), "the transport is not read again");
    }

    [Test]
    public void SetErrorStopsReadsEvenWithBytesBuffered()
    {
        var transport = new ScriptedReadStream(Pattern(100));
        using var reader = new MigrationStreamReader(transport);
        reader.GetBe32();
        var cancel = new OperationCanceledException("migration cancelled");

        reader.SetError(cancel);

        var thrown = Assert.Throws<MigrationStreamException>(() => reader.GetByte());
        Assert.That(thrown!.InnerException, Is.SameAs(cancel));
        Assert.That(thrown.Offset, Is.EqualTo(4));
        Assert.That(() => reader.PeekByte(), Throws.InstanceOf<MigrationStreamException>());
        Assert.That(() => reader.Peek(1), Throws.InstanceOf<MigrationStreamException>());
        Assert.That(() => reader.ReadExactly(new byte[2]), Throws.InstanceOf<MigrationStreamException>());
        Assert.That(transport.RequestSizes, Has.Count.EqualTo(1));
    }

    [Test]
    public void TransportExceptionsAreWrappedWithTheOffsetAndSticky()
    {
        byte[] data = Pattern(10_000);
        var transport = new ScriptedReadStream(data, failAfter: 5000);
        using var reader = new MigrationStreamReader(transport, bufferSize: 4096);
        reader.Skip(4000);
        Assert.That(reader.GetBe64(), Is.EqualTo(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(4000))));

        var thrown = Assert.Throws<MigrationStreamException>(() => reader.ReadExactly(new byte[2000]));

        Assert.That(thrown, Is.Not.InstanceOf<MigrationStreamTruncatedException>());
        Assert.That(thrown!.InnerException, Is.SameAs(transport.Thrown));
        Assert.That(thrown.Message, Does.Contain("connection reset"));
        Assert.That(thrown.Offset, Is.EqualTo(5000), "the bytes before the failure were consumed");
        Assert.That(reader.Error, Is.SameAs(transport.Thrown));

        int requests = transport.RequestSizes.Count;
        var later = Assert.Throws<MigrationStreamException>(() => reader.GetByte());
        Assert.That(later!.InnerException, Is.SameAs(transport.Thrown));
        Assert.That(transport.RequestSizes, Has.Count.EqualTo(requests));
    }

    [Test]
    public void PeekDoesNotConsume([ValueSource(nameof(Trickle))] bool trickle)
    {
        // A subsection as VMState writes it: type 5, counted name, be32 version.
        byte[] data = [0x05, 4, (byte)'c', (byte)'p', (byte)'u', (byte)'/', 0, 0, 0, 1];
        using var reader = new MigrationStreamReader(Transport(data, trickle));

        Assert.That(reader.PeekByte(), Is.EqualTo(5));
        Assert.That(reader.PeekByte(), Is.EqualTo(5));
        Assert.That(reader.Peek(6).ToArray(), Is.EqualTo(data[..6]));
        Assert.That(reader.Offset, Is.Zero);

        Assert.That(reader.GetByte(), Is.EqualTo(5));
        Assert.That(reader.Peek(1).ToArray(), Is.EqualTo(new byte[] { 4 }));
        Assert.That(reader.GetCountedString(), Is.EqualTo("cpu/"));
        Assert.That(reader.Peek(100).ToArray(), Is.EqualTo(new byte[] { 0, 0, 0, 1 }), "fewer at the end");
        Assert.That(reader.Peek(0).Length, Is.Zero);
        Assert.That(reader.GetBe32(), Is.EqualTo(1));
        Assert.That(reader.Peek(10).Length, Is.Zero);
        Assert.That(reader.PeekByte(), Is.EqualTo(-1));
        Assert.That(reader.IsAtEnd, Is.True);
        Assert.That(reader.Offset, Is.EqualTo(data.Length));
    }

    [Test]
    public void PeekNearTheEndOfTheBufferSeesTheFollowingBytes([ValueSource(nameof(Trickle))] bool trickle)
    {
        byte[] data = Pattern(20_000);
        using var reader = new MigrationStreamReader(Transport(data, trickle), bufferSize: 4096);

        for (int start = 0; start + 512 < data.Length; start += 4001)
        {
            reader.Skip(start - reader.Offset);
            Assert.That(reader.Peek(512).ToArray(), Is.EqualTo(data.AsSpan(start, 512).ToArray()));
            Assert.That(reader.Peek(reader.MaxPeekLength).ToArray(), Is.EqualTo(data.AsSpan(start, Math.Min(4096, data.Length - start)).ToArray()));
            Assert.That(reader.Offset, Is.EqualTo(start));
        }

        Assert.That(() => reader.Peek(4097), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => reader.Peek(-1), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void OffsetFollowsMixedReadsSkipsAndDirectReads([ValueSource(nameof(Trickle))] bool trickle)
    {
        byte[] data = Pattern(3 * 1024 * 1024);
        using var reader = new MigrationStreamReader(Transport(data, trickle), bufferSize: 8192);
        long expected = 0;

        reader.GetByte();
        expected += 1;
        Assert.That(reader.Offset, Is.EqualTo(expected));
        reader.GetBe64();
        expected += 8;
        Assert.That(reader.Offset, Is.EqualTo(expected));
        reader.Skip(10_000);
        expected += 10_000;
        Assert.That(reader.Offset, Is.EqualTo(expected));

        byte[] page = new byte[4096];
        reader.ReadExactly(page);
        Assert.That(page, Is.EqualTo(data.AsSpan((int)expected, 4096).ToArray()));
        expected += 4096;
        Assert.That(reader.Offset, Is.EqualTo(expected));

        byte[] big = new byte[1024 * 1024 + 3];
        reader.ReadExactly(big);
        Assert.That(big, Is.EqualTo(data.AsSpan((int)expected, big.Length).ToArray()));
        expected += big.Length;
        Assert.That(reader.Offset, Is.EqualTo(expected));

        reader.GetBe16();
        expected += 2;
        reader.Skip(1024 * 1024);
        expected += 1024 * 1024;
        Assert.That(reader.Offset, Is.EqualTo(expected));
        Assert.That(reader.GetBe32(), Is.EqualTo(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan((int)expected))));
        expected += 4;

        byte[] rest = reader.ReadBytes(data.Length - expected, "rest");
        Assert.That(rest, Is.EqualTo(data.AsSpan((int)expected).ToArray()));
        Assert.That(reader.Offset, Is.EqualTo(data.Length));
        Assert.That(reader.IsAtEnd, Is.True);
    }

    [Test]
    public void LargeReadsWithAnEmptyBufferGoStraightIntoTheDestination()
    {
        byte[] data = Pattern(2 * 1024 * 1024);
        var transport = new ScriptedReadStream(data);
        using var reader = new MigrationStreamReader(transport, bufferSize: 64 * 1024);

        byte[] destination = new byte[1024 * 1024];
        reader.ReadExactly(destination);

        Assert.That(destination, Is.EqualTo(data.AsSpan(0, destination.Length).ToArray()));
        Assert.That(transport.RequestSizes, Is.EqualTo(new[] { 1024 * 1024 }));
    }

    [Test]
    public void ReadBytesWithAHugeLengthOnAShortStreamFailsQuicklyWithoutAllocatingIt()
    {
        using var reader = new MigrationStreamReader(new MemoryStream(Pattern(1024)));
        const long fourGiB = 4L * 1024 * 1024 * 1024;
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();

        var thrown = Assert.Throws<MigrationStreamTruncatedException>(() => reader.ReadBytes(fourGiB, "vmdesc json"));

        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)));
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - allocatedBefore, Is.LessThan(1024 * 1024));
        Assert.That(thrown!.Message, Is.EqualTo(
            "unexpected end of stream at offset 0 (0x0) while reading vmdesc json (needed 4294967296 bytes, got 1024)"));
    }

    [Test]
    public void ReadBytesAboveMaxLengthFailsBeforeReading()
    {
        var transport = new ScriptedReadStream(Pattern(100));
        using var reader = new MigrationStreamReader(transport);
        reader.GetBe32();

        var thrown = Assert.Throws<MigrationStreamException>(() => reader.ReadBytes(1_000_000, "device state", maxLength: 65536));

        Assert.That(thrown!.Message, Is.EqualTo(
            "length 1000000 of device state exceeds the maximum of 65536 bytes at offset 4 (0x4)"));
        Assert.That(thrown.Offset, Is.EqualTo(4));
        Assert.That(reader.Error, Is.SameAs(thrown));
    }

    [Test]
    public void ReadBytesRejectsNegativeLengths()
    {
        using var reader = new MigrationStreamReader(new MemoryStream(Pattern(10)));

        var thrown = Assert.Throws<MigrationStreamException>(() => reader.ReadBytes(-1, "blob"));
        Assert.That(thrown!.Message, Does.StartWith("invalid length -1 for blob"));
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(65536)]
    [TestCase(65537)]
    [TestCase(1_000_000)]
    public void ReadBytesReturnsExactlyTheData(int length)
    {
        byte[] data = Pattern(length + 10);
        using var reader = new MigrationStreamReader(new TrickleStream(data), bufferSize: 4096);
        reader.Skip(3);

        byte[] result = reader.ReadBytes(length, "blob", maxLength: length);

        Assert.That(result, Is.EqualTo(data.AsSpan(3, length).ToArray()));
        Assert.That(reader.Offset, Is.EqualTo(3 + length));
    }

    [Test]
    public void CountedBytesPointIntoTheBufferWithoutCopying()
    {
        using var reader = new MigrationStreamReader(new MemoryStream([3, (byte)'r', (byte)'a', (byte)'m', 0]));

        Assert.That(reader.GetCountedBytes().SequenceEqual("ram"u8), Is.True);
        Assert.That(reader.Offset, Is.EqualTo(4));
    }

    [Test]
    public void IsAtEndWaitsForData()
    {
        using var reader = new MigrationStreamReader(new TrickleStream([1, 2]));

        Assert.That(reader.IsAtEnd, Is.False);
        Assert.That(reader.Offset, Is.Zero);
        reader.GetBe16();
        Assert.That(reader.IsAtEnd, Is.True);
    }

    [Test]
    public void SkipZeroAndEmptyReadsAreFine()
    {
        using var reader = new MigrationStreamReader(new MemoryStream([]));

        reader.Skip(0);
        reader.ReadExactly([]);
        Assert.That(reader.ReadBytes(0, "nothing"), Is.Empty);
        Assert.That(reader.IsAtEnd, Is.True);
    }

    [Test]
    public void DisposeReleasesAnOwnedTransportOnce()
    {
        var owned = new ScriptedReadStream([1, 2, 3]);
        var reader = new MigrationStreamReader(owned);
        reader.GetByte();
        reader.Dispose();
        reader.Dispose();

        Assert.That(owned.IsDisposed, Is.True);
        Assert.That(() => reader.GetByte(), Throws.InstanceOf<ObjectDisposedException>());

        var kept = new ScriptedReadStream([1]);
        using (new MigrationStreamReader(kept, leaveOpen: true))
        {
        }

        Assert.That(kept.IsDisposed, Is.False);
    }

    [Test]
    public void ConstructorValidatesItsArguments()
    {
        Assert.That(() => new MigrationStreamReader(null!), Throws.ArgumentNullException);
        Assert.That(() => new MigrationStreamReader(new RecordingWriteStream()), Throws.ArgumentException);
        Assert.That(() => new MigrationStreamReader(new MemoryStream(), bufferSize: 512), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
