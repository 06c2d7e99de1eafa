using MiniVmm.Migration.Ram;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>
/// How guest RAM is provided: preallocation (<c>-mem-prealloc</c>), huge pages, and the
/// background prefault of a destination waiting for its stream. "Allocated" is read from the
/// memfd itself: a hole (SEEK_HOLE) is memory never allocated.
/// </summary>
public sealed class RamBackingTests
{
    [Test]
    public void PreallocationAllocatesEveryPageBeforeTheMemoryIsHandedOut()
    {
        using var memory = new GuestMemory([new RamBlockLayout("ram", 0, 64L << 20, new RamBlockBacking { Preallocate = true })]);
        RamBlock block = memory.Blocks[0];

        Assert.That(block.MemoryFd.SeekHole(0), Is.EqualTo(block.UsedLength), "no hole is left");
        Assert.That(block.Populated.IsClaimed(block.Populated.Count - 1), Is.True, "the loader will not populate again");
        Assert.That(block.GetPage(100).IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "preallocated memory reads as zero");
    }

    [Test]
    public void WithoutPreallocationTheMemoryStaysUnallocated()
    {
        using var memory = GuestMemory.ForMachineNone(64L << 20);
        Assert.That(memory.Blocks[0].MemoryFd.SeekHole(0), Is.Zero);
    }

    [Test]
    public void TheBackgroundPrefaultAllocatesAllRamThenSaysSo()
    {
        using var memory = GuestMemory.ForMachineNone(96L << 20);
        using var prefault = new IncomingRamPrefault(memory);
        prefault.Start();

        Assert.That(WaitFor(() => prefault.Outcome != IncomingRamPrefaultOutcome.Running), Is.True, "the prefault ended");
        Assert.That(prefault.Outcome, Is.EqualTo(IncomingRamPrefaultOutcome.Completed));
        Assert.That(prefault.PopulatedBytes, Is.EqualTo(96L << 20));
        Assert.That(memory.Blocks[0].MemoryFd.SeekHole(0), Is.EqualTo(96L << 20), "all of RAM is allocated");
    }

    [Test]
    public void TheBackgroundPrefaultSkipsChunksTheLoaderAlreadyPopulated()
    {
        using var memory = GuestMemory.ForMachineNone(32L << 20);
        RamBlock block = memory.Blocks[0];
        for (long chunk = 0; chunk < 16; chunk++)
        {
            Assert.That(block.Populated.TryClaim(chunk), Is.True);
        }

        using var prefault = new IncomingRamPrefault(memory);
        prefault.Start();
        Assert.That(WaitFor(() => prefault.Outcome != IncomingRamPrefaultOutcome.Running), Is.True);
        Assert.That(prefault.PopulatedBytes, Is.EqualTo((32L << 20) - 16 * RamBlock.PopulateChunk));
        Assert.That(block.MemoryFd.SeekData(0), Is.EqualTo(16 * RamBlock.PopulateChunk), "the claimed chunks were left to their owner");
    }

    [Test]
    public void YieldStopsThePrefaultForGoodAndWaitsForIt()
    {
        using var memory = GuestMemory.ForMachineNone(4L << 30);
        using var prefault = new IncomingRamPrefault(memory);
        prefault.Start();
        Assert.That(WaitFor(() => prefault.PopulatedBytes > 0), Is.True, "it started populating");

        prefault.Yield();
        long populated = prefault.PopulatedBytes;
        Assert.That(prefault.Outcome, Is.EqualTo(IncomingRamPrefaultOutcome.Yielded));
        Assert.That(populated, Is.LessThan(4L << 30));

        prefault.Start();
        Thread.Sleep(100);
        Assert.That(prefault.PopulatedBytes, Is.EqualTo(populated), "a yielded prefault does not start again");
        Assert.That(prefault.Outcome, Is.EqualTo(IncomingRamPrefaultOutcome.Yielded));
    }

    [Test]
    public void ThePrefaultStopsBeforeTheHostRunsShortOfMemory()
    {
        using var memory = GuestMemory.ForMachineNone(64L << 20);
        var budget = new IncomingRamPrefaultBudget { MemoryReserveBytes = 1L << 30, AvailableMemoryBytes = () => 900L << 20 };
        using var prefault = new IncomingRamPrefault(memory, budget);
        prefault.Start();

        Assert.That(WaitFor(() => prefault.Outcome != IncomingRamPrefaultOutcome.Running), Is.True);
        Assert.That(prefault.Outcome, Is.EqualTo(IncomingRamPrefaultOutcome.StoppedForMemory));
        Assert.That(prefault.PopulatedBytes, Is.Zero);
        Assert.That(memory.Blocks[0].MemoryFd.SeekHole(0), Is.Zero, "nothing was allocated");
    }

    [Test]
    public void HugePagesBackTheBlockWhenTheHostHasThemReserved()
    {
        using HugePageReservation reservation = HugePageReservation.Ensure(8);
        using var memory = new GuestMemory([new RamBlockLayout("mem0", 0, 8L << 20, new RamBlockBacking { HugeTlb = true })]);
        RamBlock block = memory.Blocks[0];

        Assert.That(block.BackingPageSize, Is.EqualTo(2L << 20));
        memory.Write(5L << 20, "on a huge page"u8);
        byte[] back = new byte[14];
        memory.Read(5L << 20, back);
        Assert.That(back, Is.EqualTo("on a huge page"u8.ToArray()));
    }

    [Test]
    public void AHugePageBlockThatDoesNotFitTheReservationFailsByName()
    {
        using HugePageReservation reservation = HugePageReservation.Ensure(2);
        long tooBig = (reservation.Free + 4) * (2L << 20);
        var error = Assert.Throws<RamBackingException>(
            () => new GuestMemory([new RamBlockLayout("mem0", 0, tooBig, new RamBlockBacking { HugeTlb = true })]));
        Assert.That(error!.Message, Does.Contain("RAM block 'mem0': unable to map backing store for guest RAM"));
        Assert.That(error.Message, Does.Contain("nr_hugepages"));
    }

    [Test]
    public void AHugePageBlockMustBeAWholeNumberOfHugePages()
    {
        using HugePageReservation reservation = HugePageReservation.Ensure(2);
        var error = Assert.Throws<RamBackingException>(
            () => new GuestMemory([new RamBlockLayout("mem0", 0, 3L << 20, new RamBlockBacking { HugeTlb = true })]));
        Assert.That(error!.Message, Is.EqualTo("RAM block 'mem0': size 0x300000 is not a multiple of the huge page size 0x200000"));
    }

    private static bool WaitFor(Func<bool> condition)
    {
        for (int i = 0; i < 6000 && !condition(); i++)
        {
            Thread.Sleep(10);
        }

        return condition();
    }
}
