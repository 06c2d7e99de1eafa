using MiniVmm.Migration.Ram;
using MiniVmm.Native;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>The memfd dirty log: marking, harvesting, concurrency and the external-guest path.</summary>
public sealed class DirtyTrackingTests
{
    private const long Size = 16L << 20;

    [Test]
    public void WritesMarkExactlyTheTouchedPagesWhileLogging()
    {
        using var memory = GuestMemory.ForMachineNone(Size);
        memory.Write(0x9000, new byte[16]);
        memory.StartDirtyLogging();

        memory.Write(0x1ff0, new byte[0x20]);
        memory.Write(0x5000, new byte[1]);
        memory.Write(0x7fff, new byte[1]);
        memory.Write(0xa000, new byte[0x3000]);

        Assert.That(DirtyPages(memory.Blocks[0].DirtyBitmap), Is.EqualTo(new long[] { 1, 2, 5, 7, 10, 11, 12 }));
    }

    [Test]
    public void WritesWithoutDirtyLoggingMarkNothing()
    {
        using var memory = GuestMemory.ForMachineNone(Size);
        memory.StartDirtyLogging();
        memory.StopDirtyLogging();

        memory.Write(0x3000, new byte[4096]);

        Assert.That(memory.Blocks[0].DirtyBitmap.CountDirty(), Is.Zero);
        Assert.That(() => memory.StopDirtyLogging(), Throws.InvalidOperationException);
    }

    [Test]
    public void AHarvestTakesEachDirtyBitExactlyOnce()
    {
        using var memory = GuestMemory.ForMachineNone(Size);
        DirtyBitmap bitmap = memory.Blocks[0].DirtyBitmap;
        bitmap.Mark(3);
        bitmap.MarkRange(62, 5);
        bitmap.Mark(bitmap.PageCount - 1);
        ulong[] first = new ulong[bitmap.WordCount];
        ulong[] second = new ulong[bitmap.WordCount];

        long fresh = bitmap.HarvestInto(first);
        long again = bitmap.HarvestInto(second);

        Assert.That(fresh, Is.EqualTo(7));
        Assert.That(Pages(first), Is.EqualTo(new[] { 3, 62, 63, 64, 65, 66, bitmap.PageCount - 1 }));
        Assert.That(again, Is.Zero);
        Assert.That(second, Is.All.EqualTo(0UL));
        Assert.That(bitmap.CountDirty(), Is.Zero);
    }

    [Test]
    public void AHarvestCountsOnlyBitsTheTargetDidNotHave()
    {
        using var bitmap = new DirtyBitmap("test", 200);
        bitmap.MarkRange(0, 10);
        ulong[] target = new ulong[bitmap.WordCount];
        target[0] = 0b111;

        Assert.That(bitmap.HarvestInto(target), Is.EqualTo(7));
        Assert.That(target[0], Is.EqualTo(0x3ffUL));
    }

    [Test]
    public void ConcurrentWritersAndAHarvesterLoseNoBit()
    {
        using var memory = GuestMemory.ForMachineNone(Size);
        memory.StartDirtyLogging();
        DirtyBitmap bitmap = memory.Blocks[0].DirtyBitmap;
        const int Writers = 3;
        long pages = bitmap.PageCount;
        ulong[] union = new ulong[bitmap.WordCount];
        using var stop = new ManualResetEventSlim();
        long harvests = 0;
        long twice = 0;
        var harvester = new Thread(() =>
        {
            ulong[] scratch = new ulong[bitmap.WordCount];
            while (!stop.IsSet)
            {
                Array.Clear(scratch);
                bitmap.HarvestInto(scratch);
                for (int i = 0; i < scratch.Length; i++)
                {
                    twice += System.Numerics.BitOperations.PopCount(scratch[i] & union[i]);
                    union[i] |= scratch[i];
                }

                harvests++;
            }
        });
        harvester.Start();
        var writers = Enumerable.Range(0, Writers).Select(w => new Thread(() =>
        {
            var random = new Random(w);
            long[] mine = Enumerable.Range(0, (int)pages).Where(p => p % Writers == w).Select(p => (long)p).ToArray();
            random.Shuffle(mine);
            byte[] one = [1];
            foreach (long page in mine)
            {
                memory.Write((page << 12) + random.Next(4096), one);
            }
        })).ToList();
        writers.ForEach(t => t.Start());
        writers.ForEach(t => t.Join());
        stop.Set();
        harvester.Join();
        ulong[] rest = new ulong[bitmap.WordCount];
        bitmap.HarvestInto(rest);
        for (int i = 0; i < rest.Length; i++)
        {
            Assert.That(rest[i] & union[i], Is.Zero, "a bit was harvested twice");
            union[i] |= rest[i];
        }

        Assert.That(twice, Is.Zero, "bits harvested twice");
        Assert.That(Pages(union).Count, Is.EqualTo(pages), $"after {harvests} concurrent harvests");
    }

    [Test]
    public unsafe void TheDirtyLogIsSharedThroughItsMemfd()
    {
        using var memory = GuestMemory.ForMachineNone(Size);
        DirtyBitmap bitmap = memory.Blocks[0].DirtyBitmap;
        using var external = MemoryMapping.Map(bitmap.Fd, 0, bitmap.MappedBytes, MemoryProtection.ReadWrite, MappingFlags.Shared);
        ulong* words = (ulong*)external.Pointer;

        // The "external guest" marks page 70 (word 1, bit 6) with an atomic OR on its own mapping.
        Interlocked.Or(ref words[1], 1UL << 6);
        bitmap.Mark(5);

        Assert.That(bitmap.IsDirty(70), Is.True);
        Assert.That(Volatile.Read(ref words[0]), Is.EqualTo(1UL << 5));
        ulong[] harvested = new ulong[bitmap.WordCount];
        bitmap.HarvestInto(harvested);
        Assert.That(Pages(harvested), Is.EqualTo(new long[] { 5, 70 }));
        Assert.That(Volatile.Read(ref words[1]), Is.Zero, "the harvest cleared the shared word");
    }

    [Test]
    public unsafe void GuestRamIsSharedThroughItsMemfd()
    {
        using var memory = GuestMemory.ForMachineNone(Size);
        RamBlock block = memory.Blocks[0];
        using var external = MemoryMapping.Map(block.MemoryFd, 0, block.UsedLength, MemoryProtection.ReadWrite, MappingFlags.Shared);

        external.GetSpan(0x4000, 4)[..].Fill(0x42);
        memory.Write(0x8000, "abcd"u8);

        byte[] read = new byte[4];
        memory.Read(0x4000, read);
        Assert.That(read, Is.All.EqualTo(0x42));
        Assert.That(external.GetSpan(0x8000, 4).ToArray(), Is.EqualTo("abcd"u8.ToArray()));
    }

    [Test]
    public void TheDirtyRateMeterCountsPagesWrittenDuringTheWindowAndKeepsEveryMark()
    {
        using var memory = GuestMemory.ForMachineNone(Size);
        var time = new ManualTimeProvider();
        memory.StartDirtyLogging();
        memory.Write(0, new byte[3 * 4096]);
        var meter = new DirtyRateMeter(memory, time);

        DirtyRateMeasurement measurement = meter.Start();
        memory.Write(0x10000, new byte[4 * 4096]);
        memory.Write(0x10000, new byte[1]);
        time.Advance(TimeSpan.FromSeconds(2));
        DirtyRate rate = measurement.Finish();

        Assert.That(rate.DirtiedPages, Is.EqualTo(4));
        Assert.That(rate.Window, Is.EqualTo(TimeSpan.FromSeconds(2)));
        Assert.That(rate.PagesPerSecond, Is.EqualTo(2));
        Assert.That(DirtyPages(memory.Blocks[0].DirtyBitmap), Is.EqualTo(new long[] { 0, 1, 2, 16, 17, 18, 19 }));
        Assert.That(memory.IsDirtyLogging, Is.True, "the meter's logging stopped, the first user's did not");
        measurement.Dispose();
    }

    private static List<long> DirtyPages(DirtyBitmap bitmap) =>
        Enumerable.Range(0, (int)bitmap.PageCount).Where(p => bitmap.IsDirty(p)).Select(p => (long)p).ToList();

    private static List<long> Pages(ulong[] words)
    {
        var pages = new List<long>();
        for (int i = 0; i < words.Length; i++)
        {
            for (int bit = 0; bit < 64; bit++)
            {
                if ((words[i] & (1UL << bit)) != 0)
                {
                    pages.Add(i * 64L + bit);
                }
            }
        }

        return pages;
    }
}
