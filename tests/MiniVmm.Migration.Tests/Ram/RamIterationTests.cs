using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>The source side of the RAM handler: sections, rate limit, CONTINUE, dirty pages, failures.</summary>
public sealed class RamIterationTests
{
    private const long Size = 4L << 20;

    [Test]
    public void IterationStopsWhenTheRateWindowIsFullAndContinuesWithContinue()
    {
        using var machine = new MachineNoneHarness(Size);
        FillRandom(machine.Memory, 0, 64);
        const long Limit = 20000;

        byte[] stream = machine.SaveStream(rateLimitBytes: Limit);

        var sections = RamStreamWalker.Walk(stream);
        var parts = sections.Where(s => s.Type == 0x02).ToList();
        Assert.That(parts, Has.Count.GreaterThan(2));
        Assert.That(parts[0].Records[0].BlockName, Is.EqualTo("ram"), "first record of the first PART names the block");
        foreach (var part in parts.Skip(1))
        {
            Assert.That(part.Records[0].Flags & 0x20, Is.EqualTo(0x20), $"PART at {part.BodyStart} starts with CONTINUE");
            Assert.That(part.Records[0].BlockName, Is.Null);
        }

        foreach (var part in parts.SkipLast(1))
        {
            long bodyBytes = part.BodyEnd - part.BodyStart;
            long lastRecord = part.Records[^1].StreamOffset - part.Records[^2].StreamOffset;
            Assert.That(bodyBytes - 8 - lastRecord, Is.LessThanOrEqualTo(Limit), "the last page was sent only while the window had room");
        }

        var pages = parts.SelectMany(p => p.Records).Where(r => r.Flags != 0x10).Select(r => r.Address).ToList();
        Assert.That(pages, Is.EqualTo(Enumerable.Range(0, (int)(Size / 4096)).Select(p => p * 4096L)), "every page once, in order");
    }

    [Test]
    public void EverySectionOfTheRamEntryEndsWithEos()
    {
        using var machine = new MachineNoneHarness(Size);
        FillRandom(machine.Memory, 10, 40);

        byte[] stream = machine.SaveStream(rateLimitBytes: 50000);

        var ramSections = RamStreamWalker.Walk(stream).Where(s => s.IdStr == "ram").ToList();
        Assert.That(ramSections.Select(s => s.Type).Distinct(), Is.EquivalentTo(new byte[] { 1, 2, 3 }));
        foreach (var section in ramSections)
        {
            Assert.That(section.Records[^1].Flags, Is.EqualTo(0x10), $"section type {section.Type} at {section.BodyStart}");
            Assert.That(section.Records.Count(r => r.Flags == 0x10), Is.EqualTo(1));
        }
    }

    [Test]
    public void PagesDirtiedDuringIterationAreSentAgainAtCompletion()
    {
        using var machine = new MachineNoneHarness(Size);
        FillRandom(machine.Memory, 0, 8);

        byte[] stream = machine.SaveStream(afterSetup: save =>
        {
            while (save.Iterate() != IterationOutcome.Finished)
            {
            }

            machine.Memory.Write(0x3000, "dirty"u8);
            Assert.That(save.PendingEstimate().Total, Is.Zero, "the estimate does not sync");
            Assert.That(save.PendingExact().Total, Is.EqualTo(4096UL), "the exact size syncs");
            machine.Memory.Write(0x200000, "again"u8);
        });

        var sections = RamStreamWalker.Walk(stream);
        var lastPart = sections.Last(s => s.Type == 0x02);
        var end = sections.Single(s => s.Type == 0x03);
        Assert.That(lastPart.Records.Select(r => (r.Address, r.Flags)), Is.EqualTo(new[] { (0x3000L, 0x28), (0L, 0x10) }));
        Assert.That(end.Records.Select(r => (r.Address, r.Flags)), Is.EqualTo(new[] { (0x200000L, 0x28), (0L, 0x10) }));
        using var destination = new MachineNoneHarness(Size);
        destination.Load(stream);
        Assert.That(destination.ReadAllRam(), Is.EqualTo(machine.ReadAllRam()));
        Assert.That(machine.Ram.Snapshot().DirtySyncCount, Is.EqualTo(3));
    }

    [Test]
    public void BytesSentWhileTheVmRunsCountAsPrecopy()
    {
        using var machine = new MachineNoneHarness(Size);
        using (machine.Vm.Bql.Acquire())
        {
            machine.Vm.Start();
        }

        using var writer = new MigrationStreamWriter(System.IO.Stream.Null);
        machine.Ram.SaveSetup(writer);
        Assert.That(machine.Ram.SaveLiveIterate(writer), Is.EqualTo(IterationOutcome.Finished));
        using (machine.Vm.Bql.Acquire())
        {
            machine.Vm.Stop(RunState.Paused);
            machine.Ram.SaveLiveCompletePrecopy(writer);
            machine.Ram.SaveCleanup();
        }

        var stats = machine.Ram.Snapshot();
        Assert.That(stats.PrecopyBytes, Is.EqualTo(stats.Transferred));
        Assert.That(stats.Transferred, Is.EqualTo(1024 * 9 + 4 + 8), "1024 ZERO records, the block name once, EOS");
        Assert.That(stats.DowntimeBytes, Is.Zero);
    }

    [Test]
    public void AfterAFailedSendEveryPageNotDeliveredIsDirtyAgain()
    {
        using var machine = new MachineNoneHarness(Size);
        FillRandom(machine.Memory, 0, 1024);
        var transport = new FailingWriteStream();
        using var writer = new MigrationStreamWriter(transport, leaveOpen: true) { RateLimitBytes = 40000 };
        RamMigrationHandler ram = machine.Ram;
        ram.SaveSetup(writer);
        writer.StartNewRateWindow();
        Assert.That(ram.SaveLiveIterate(writer), Is.EqualTo(IterationOutcome.MoreData));
        long delivered = ram.Snapshot().Normal;
        Assert.That(delivered, Is.InRange(2, 20));

        writer.StartNewRateWindow();
        transport.FailAfterBytes = transport.Length + 20000;
        Assert.That(() => ram.SaveLiveIterate(writer), Throws.InstanceOf<MigrationStreamException>());
        Assert.That(ram.DirtyPages, Is.EqualTo(1024 - delivered), "pages of the failed call are to send again");
        using (machine.Vm.Bql.Acquire())
        {
            ram.SaveCleanup();
            ram.SaveCleanup();
        }

        DirtyBitmap log = machine.Memory.Blocks[0].DirtyBitmap;
        var dirty = Enumerable.Range(0, 1024).Where(p => log.IsDirty(p)).ToList();
        Assert.That(dirty, Is.EqualTo(Enumerable.Range((int)delivered, 1024 - (int)delivered)));
        Assert.That(machine.Memory.IsDirtyLogging, Is.False);
    }

    [Test]
    public void CleanupWithoutSetupDoesNothing()
    {
        using var machine = new MachineNoneHarness(Size);
        using (machine.Vm.Bql.Acquire())
        {
            machine.Ram.SaveCleanup();
        }

        Assert.That(machine.Memory.Blocks[0].DirtyBitmap.CountDirty(), Is.Zero);
    }

    [Test]
    public void TheTimeBudgetEndsAnIterationAfterAMultipleOf64Pages()
    {
        using var machine = new MachineNoneHarness(Size);
        FillRandom(machine.Memory, 0, 1024);
        using var writer = new MigrationStreamWriter(System.IO.Stream.Null);
        machine.Ram.SaveSetup(writer);
        machine.Time.AutoAdvance = TimeSpan.FromMilliseconds(10);

        IterationOutcome outcome = machine.Ram.SaveLiveIterate(writer);

        // Read at the start, then after pages 1, 65, 129, ...: 10, 20, 30, 40, 50 ms are within
        // the 50 ms budget, 60 ms after page 321 is not.
        Assert.That(outcome, Is.EqualTo(IterationOutcome.MoreData));
        Assert.That(machine.Ram.Snapshot().Normal, Is.EqualTo(5 * 64 + 1));
    }

    private static void FillRandom(GuestMemory memory, int firstPage, int pages)
    {
        byte[] data = new byte[pages * 4096];
        new Random(firstPage * 7 + pages).NextBytes(data);
        memory.Write(firstPage * 4096L, data);
    }
}
