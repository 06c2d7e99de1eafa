using MiniVmm.Migration.Ram;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>Guest RAM: layout, reads and writes, loader files, pmemsave, cheap large blocks.</summary>
public sealed class GuestMemoryTests
{
    [Test]
    public void MachineNoneHasOneBlockNamedRamAtZero()
    {
        using var memory = GuestMemory.ForMachineNone(64L << 20);

        Assert.That(memory.Blocks, Has.Count.EqualTo(1));
        Assert.That(memory.Blocks[0].IdStr, Is.EqualTo("ram"));
        Assert.That(memory.Blocks[0].GuestAddress, Is.Zero);
        Assert.That(memory.Blocks[0].UsedLength, Is.EqualTo(64L << 20));
        Assert.That(memory.TotalBytes, Is.EqualTo(64L << 20));
    }

    [Test]
    public void FourGibibytesAreCheapToCreateAndStayUnallocated()
    {
        using var memory = GuestMemory.ForMachineNone(4L << 30);
        memory.Write((4L << 30) - 8, "lastlast"u8);

        RamBlock block = memory.Blocks[0];
        Assert.That(block.MemoryFd.SeekData(0), Is.EqualTo((4L << 30) - 4096), "only the written page holds data");
        byte[] tail = new byte[8];
        memory.Read((4L << 30) - 8, tail);
        Assert.That(tail, Is.EqualTo("lastlast"u8.ToArray()));
    }

    [Test]
    public void ReadsAndWritesCrossBlocksButNotGaps()
    {
        using var memory = new GuestMemory(
        [
            new RamBlockLayout("low", 0, 0x10000),
            new RamBlockLayout("high", 0x10000, 0x10000),
            new RamBlockLayout("far", 0x100000, 0x1000),
        ]);
        byte[] data = Enumerable.Range(0, 0x2000).Select(i => (byte)i).ToArray();

        memory.Write(0xf000, data);

        byte[] back = new byte[0x2000];
        memory.Read(0xf000, back);
        Assert.That(back, Is.EqualTo(data));
        Assert.That(memory.FindBlock("high")!.GetSpan(0, 0x1000).ToArray(), Is.EqualTo(data[0x1000..]));
        var error = Assert.Throws<GuestMemoryRangeException>(() => memory.Write(0x1ff00, new byte[0x200]))!;
        Assert.That(error.Message, Does.Contain("0x1ff00+0x200 is not entirely RAM"));
        Assert.That(memory.FindBlock("high")!.GetSpan(0xff00, 0x100).ToArray(), Is.All.EqualTo(0), "nothing written");
    }

    [Test]
    public void OverlappingBlocksAreRefused()
    {
        Assert.That(
            () => new GuestMemory([new RamBlockLayout("a", 0, 0x2000), new RamBlockLayout("b", 0x1000, 0x1000)]),
            Throws.ArgumentException.With.Message.Contains("overlaps"));
    }

    [Test]
    public void LoadFilePutsTheFileAtItsAddress()
    {
        using var memory = GuestMemory.ForMachineNone(64L << 20);

        memory.LoadFile(FixtureFiles.LoaderInputs[1].Path, 0x100000);

        byte[] marker = new byte[8];
        memory.Read(0x100000, marker);
        Assert.That(BitConverter.ToUInt64(marker), Is.EqualTo(0x1122334455667788UL));
    }

    [Test]
    public void LoadFileThatDoesNotFitIsRefusedAndWritesNothing()
    {
        using var memory = GuestMemory.ForMachineNone(64L << 20);

        var error = Assert.Throws<GuestMemoryRangeException>(
            () => memory.LoadFile(FixtureFiles.LoaderInputs[0].Path, (64L << 20) - 4096))!;

        Assert.That(error.Message, Does.Contain("pattern.bin").And.Contain("does not fit in guest RAM at 0x3fff000"));
        Assert.That(memory.Blocks[0].MemoryFd.SeekData(0), Is.EqualTo(-1));
    }

    [Test]
    public void SaveToFileWritesTheRangeAndRefusesOneOutsideRam()
    {
        using var memory = GuestMemory.ForMachineNone(1L << 20);
        memory.Write(0x1000, "pmemsave"u8);
        string path = Path.Combine(Path.GetTempPath(), $"minivmm-pmemsave-{Guid.NewGuid():n}.img");
        try
        {
            memory.SaveToFile(0x1000, 0x2000, path);

            byte[] saved = File.ReadAllBytes(path);
            Assert.That(saved, Has.Length.EqualTo(0x2000));
            Assert.That(saved[..8], Is.EqualTo("pmemsave"u8.ToArray()));
            var error = Assert.Throws<GuestMemoryRangeException>(() => memory.SaveToFile(0xff000, 0x2000, path + ".bad"))!;
            Assert.That(error.Message, Does.Contain("pmemsave").And.Contain("0xff000+0x2000"));
            Assert.That(File.Exists(path + ".bad"), Is.False);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void DisposeIsIdempotent()
    {
        var memory = GuestMemory.ForMachineNone(1L << 20);
        memory.Dispose();
        memory.Dispose();

        Assert.That(() => memory.Write(0, new byte[1]), Throws.InstanceOf<ObjectDisposedException>());
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(255)]
    [TestCase(4096)]
    [TestCase(4095)]
    public void ZeroPageFindsEveryNonZeroByte(int length)
    {
        byte[] buffer = new byte[length];
        Assert.That(ZeroPage.IsZero(buffer), Is.True);
        for (int i = 0; i < length; i++)
        {
            buffer[i] = 1;
            Assert.That(ZeroPage.IsZero(buffer), Is.False, $"byte {i}");
            buffer[i] = 0;
        }
    }
}
