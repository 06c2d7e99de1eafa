using System.Buffers.Binary;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>Corrupt RAM sections, each refused with the message QEMU 7.2's <c>ram_load_precopy</c> gives.</summary>
public sealed class RamLoadErrorTests
{
    private const int MemSizeWord = 0x22;
    private const int BlockNameInList = 0x2a;
    private const int BlockLengthInList = 0x2e;
    private const int FirstPageRecord = 0x48;

    [Test]
    public void AStreamOf128MiBIsRefusedBy64MiB()
    {
        byte[] stream = FixtureFiles.ReadStream();
        BinaryPrimitives.WriteUInt64BigEndian(stream.AsSpan(MemSizeWord), 0x8000000 | 0x04);
        BinaryPrimitives.WriteUInt64BigEndian(stream.AsSpan(BlockLengthInList), 0x8000000);

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.StartWith("error while loading state for instance 0x0 of device 'ram'"));
        Assert.That(error.Message, Does.Contain("Size mismatch: ram: 0x8000000 != 0x4000000"));
        Assert.That(error.InnerException, Is.TypeOf<RamLoadException>());
    }

    [Test]
    public void A64MiBStreamIsRefusedBy128MiB()
    {
        var error = LoadFails(128L << 20, FixtureFiles.ReadStream());

        Assert.That(error.Message, Does.Contain("Size mismatch: ram: 0x4000000 != 0x8000000"));
    }

    [Test]
    public void ABlockListLongerThanItsTotalIsRefused()
    {
        byte[] stream = FixtureFiles.ReadStream();
        BinaryPrimitives.WriteUInt64BigEndian(stream.AsSpan(MemSizeWord), 0x1000 | 0x04);

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.Contain("RAM block list adds up to more than the MEM_SIZE total 0x1000 (local RAM is 0x4000000)"));
        Assert.That(error.InnerException, Is.TypeOf<RamLoadException>());
    }

    [Test]
    public void AnUnknownBlockIsRefused()
    {
        byte[] fixture = FixtureFiles.ReadStream();
        byte[] stream = [.. fixture.AsSpan(0, BlockNameInList), 6, .. "pc.ram"u8, .. fixture.AsSpan(BlockNameInList + 4)];

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.Contain("Unknown ramblock \"pc.ram\", cannot accept migration"));
        Assert.That(error.InnerException, Is.TypeOf<RamLoadException>());
    }

    [Test]
    public void APageBeyondTheBlockIsRefused()
    {
        byte[] stream = FixtureFiles.ReadStream();
        BinaryPrimitives.WriteUInt64BigEndian(stream.AsSpan(FirstPageRecord), 0x8000000 | 0x08);

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.StartWith("error while loading state section id 2(ram): Illegal RAM offset 8000000"));
        Assert.That(error.InnerException, Is.TypeOf<RamLoadException>());
    }

    [TestCase(0x8000000000000000UL, 0x08, "8000000000000000", TestName = "APageAtAnOffsetWithTheTopBitSetIsRefused")]
    [TestCase(0xfffffffffffff000UL, 0x02, "fffffffffffff000", TestName = "AZeroPageAtTheLastPossibleOffsetIsRefused")]
    public void AnOffsetThatIsNegativeAsASignedNumberIsRefused(ulong offset, int flag, string shown)
    {
        // Found by the fuzzer: the check compared the offset as a signed number, so these passed it
        // and the loader indexed its prefault table at a negative chunk (IndexOutOfRangeException)
        // or asked lseek(SEEK_DATA) for a negative offset (ArgumentOutOfRangeException).
        byte[] stream = FixtureFiles.ReadStream();
        BinaryPrimitives.WriteUInt64BigEndian(stream.AsSpan(FirstPageRecord), offset | (uint)flag);

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.StartWith($"error while loading state section id 2(ram): Illegal RAM offset {shown}"));
        Assert.That(error.Message, Does.Contain($"at offset {FirstPageRecord} (0x{FirstPageRecord:x})"));
        Assert.That(error.InnerException, Is.TypeOf<RamLoadException>());
    }

    [Test]
    public void ContinueWithoutAnEarlierBlockIsRefused()
    {
        byte[] stream = FixtureFiles.ReadStream();
        BinaryPrimitives.WriteUInt64BigEndian(stream.AsSpan(FirstPageRecord), 0x08 | 0x20);

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.Contain("Ack, bad migration stream!; Illegal RAM offset 0"));
    }

    [Test]
    public void AnUnknownFlagCombinationIsRefused()
    {
        byte[] stream = FixtureFiles.ReadStream();
        BinaryPrimitives.WriteUInt64BigEndian(stream.AsSpan(FirstPageRecord), 0x01);

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.Contain("Unknown combination of migration flags: 0x1"));
    }

    [Test]
    public void AnUnknownBlockInAPageRecordIsRefused()
    {
        byte[] stream = FixtureFiles.ReadStream();
        "rom"u8.CopyTo(stream.AsSpan(FirstPageRecord + 9));

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.Contain("Can't find block rom; Illegal RAM offset 0"));
    }

    [Test]
    public void ACompressedPageIsRefused()
    {
        byte[] stream = FixtureFiles.ReadStream();
        BinaryPrimitives.WriteUInt64BigEndian(stream.AsSpan(FirstPageRecord), 0x100);

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.Contain("Received an unexpected compressed page"));
    }

    [Test]
    public void AZeroRecordWithAFillByteFillsThePage()
    {
        byte[] stream = FixtureFiles.ReadStream();
        var zeroRecord = RamStreamWalker.Walk(stream).SelectMany(s => s.Records).First(r => r.Address == 0x5000);
        stream[zeroRecord.StreamOffset + 8] = 0xEF;
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);

        machine.Load(stream);

        byte[] page = new byte[4096];
        machine.Memory.Read(0x5000, page);
        Assert.That(page, Is.All.EqualTo(0xEF));
    }

    [TestCase(FirstPageRecord + 4108 + 2000, TestName = "TruncatedInsidePageData")]
    [TestCase(100000, TestName = "TruncatedInsideAZeroRecord")]
    [TestCase(FirstPageRecord + 4108 + 3, TestName = "TruncatedInsideARecordWord")]
    public void ATruncatedPartSectionFailsWithTheTruncationErrorAndTouchesNoOtherPage(int cut)
    {
        byte[] stream = FixtureFiles.ReadStream()[..cut];
        var records = RamStreamWalker.Walk(FixtureFiles.ReadStream()).SelectMany(s => s.Records).ToList();
        long lastTouched = records.Where(r => r.StreamOffset < cut && (r.Flags & 0x0a) != 0).Max(r => r.Address);
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        byte[] sentinel = new byte[FixtureFiles.RamSize];
        sentinel.AsSpan().Fill(0xA5);
        machine.Memory.Write(0, sentinel);

        var error = Assert.Throws<MigrationLoadException>(() => machine.Load(stream))!;

        Assert.That(error.InnerException, Is.TypeOf<MigrationStreamTruncatedException>());
        Assert.That(error.Message, Does.StartWith("error while loading state section id 2(ram)"));
        byte[] ram = machine.ReadAllRam();
        long untouchedFrom = lastTouched + 4096;
        Assert.That(ram.AsSpan((int)untouchedFrom).IndexOfAnyExcept((byte)0xA5), Is.EqualTo(-1),
            $"RAM from 0x{untouchedFrom:x} must be untouched");
    }

    [Test]
    public void AWrongSectionVersionIsRefused()
    {
        byte[] stream = FixtureFiles.ReadStream();
        BinaryPrimitives.WriteUInt32BigEndian(stream.AsSpan(0x1e), 5);

        var error = LoadFails(FixtureFiles.RamSize, stream);

        Assert.That(error.Message, Does.Contain("savevm: unsupported version 5 for 'ram' v4"));
    }

    private static MigrationLoadException LoadFails(long ramSize, byte[] stream)
    {
        using var machine = new MachineNoneHarness(ramSize);
        return Assert.Throws<MigrationLoadException>(() => machine.Load(stream))!;
    }
}
