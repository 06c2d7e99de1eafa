using MiniVmm.Migration.Control;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>The QEMU 7.2 fixture stream: loading it, and writing it byte for byte.</summary>
public sealed class RamFixtureTests
{
    [Test]
    public void LoadingTheFixtureRebuildsTheRamImageAndTheRunState()
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);

        var result = machine.Load(FixtureFiles.ReadStream());

        Assert.That(FixtureFiles.Sha256(machine.ReadAllRam()), Is.EqualTo(FixtureFiles.RamImageSha256));
        Assert.That(machine.GlobalState.ReceivedState, Is.EqualTo(RunState.Prelaunch));
        Assert.That(result.BytesRead, Is.EqualTo(new FileInfo(FixtureFiles.Stream).Length));
        Assert.That(result.Warnings, Is.Empty);
    }

    [Test]
    public void LoadingTheFixtureLeavesZeroPagesUnallocated()
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);

        machine.Load(FixtureFiles.ReadStream());

        // 17 data pages; the 16367 ZERO records must not fault pages into the memfd.
        var block = machine.Memory.Blocks[0];
        long allocated = 0;
        for (long offset = block.MemoryFd.SeekData(0); offset >= 0 && offset < block.UsedLength;)
        {
            long hole = block.MemoryFd.SeekHole(offset);
            allocated += hole - offset;
            offset = block.MemoryFd.SeekData(hole);
        }

        Assert.That(allocated, Is.LessThanOrEqualTo(17 * 4096 * 16), "bytes backed by memory after the load");
    }

    [Test]
    public void SavingTheFixtureRamInPrelaunchWritesQemusStreamByteForByte()
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        machine.LoadFixtureInputs();
        Assert.That(machine.Vm.State, Is.EqualTo(RunState.Prelaunch));

        byte[] stream = machine.SaveStream();

        byte[] expected = FixtureFiles.ReadStream();
        Assert.That(stream.Length, Is.EqualTo(expected.Length));
        int firstDifference = stream.AsSpan().CommonPrefixLength(expected);
        Assert.That(firstDifference, Is.EqualTo(expected.Length), $"first difference at offset 0x{firstDifference:x}");
    }

    [Test]
    public void StatisticsOfTheFixtureSaveMatchQemusQueryMigrate()
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        machine.LoadFixtureInputs();

        machine.SaveStream();
        RamTransferStats stats = machine.Ram.Snapshot();

        Assert.Multiple(() =>
        {
            Assert.That(stats.Transferred, Is.EqualTo(217083));
            Assert.That(stats.Normal, Is.EqualTo(17));
            Assert.That(stats.NormalBytes, Is.EqualTo(69632));
            Assert.That(stats.Duplicate, Is.EqualTo(16367));
            Assert.That(stats.DirtySyncCount, Is.EqualTo(2));
            Assert.That(stats.Total, Is.EqualTo(67108864));
            Assert.That(stats.Remaining, Is.EqualTo(0));
            Assert.That(stats.DowntimeBytes, Is.EqualTo(217083), "the VM never ran");
            Assert.That(stats.PrecopyBytes, Is.EqualTo(0));
            Assert.That(stats.DirtyPagesRate, Is.EqualTo(0));
            Assert.That(stats.PageSize, Is.EqualTo(4096));
        });
    }

    [Test]
    public void StatisticsAreAvailableThroughTheMachinesService()
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        var statistics = (IRamTransferStatistics)machine.Services.GetService(typeof(IRamTransferStatistics))!;

        Assert.That(statistics, Is.SameAs(machine.Ram));
    }

    [Test]
    public void SectionIdsFollowQemusRegistrationOrder()
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);

        var ids = machine.Registry.Entries.Select(e => (e.IdStr, e.SectionId, e.IsActive())).ToArray();

        Assert.That(ids, Is.EqualTo(new[]
        {
            ("timer", 0, true), ("block", 1, false), ("ram", 2, true), ("dirty-bitmap", 3, false), ("globalstate", 4, true),
        }));
    }
}
