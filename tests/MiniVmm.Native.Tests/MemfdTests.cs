using MiniVmm.Native;

namespace MiniVmm.Native.Tests;

public sealed class MemfdTests
{
    private const int Size = 4 << 20;

    [Test]
    public void TwoSharedMappingsAndTheDescriptorSeeTheSameBytes()
    {
        using FileDescriptorHandle memfd = Memfd.Create("guest-ram");
        memfd.Truncate(Size);
        using var first = MemoryMapping.Map(memfd, 0, Size, MemoryProtection.ReadWrite, MappingFlags.Shared);
        using var second = MemoryMapping.Map(memfd, 0, Size, MemoryProtection.ReadWrite, MappingFlags.Shared);
        Assert.That(second.Address, Is.Not.EqualTo(first.Address));

        byte[] pattern = new byte[Size];
        new Random(1234).NextBytes(pattern);
        pattern.CopyTo(first.GetSpan(0, Size));

        Assert.That(second.GetSpan(0, Size).SequenceEqual(pattern), Is.True, "second mapping");
        byte[] viaRead = new byte[Size];
        memfd.ReadExactly(viaRead);
        Assert.That(viaRead, Is.EqualTo(pattern), "read(2) on the memfd");

        second.GetSpan(Size - 1, 1)[0] = 0x5A;
        Assert.That(first.GetSpan(Size - 1, 1)[0], Is.EqualTo(0x5A));
    }

    [Test]
    public void TruncateSetsTheSize()
    {
        using FileDescriptorHandle memfd = Memfd.Create("sized");
        Assert.That(memfd.Size, Is.Zero);
        memfd.Truncate(3 * SystemPage.Size);
        Assert.That(memfd.Size, Is.EqualTo(3 * SystemPage.Size));
    }

    [Test]
    public void CreateSetsCloseOnExecByDefaultOnly()
    {
        using FileDescriptorHandle withDefault = Memfd.Create("cloexec");
        using FileDescriptorHandle withoutFlag = Memfd.Create("inherit", MemfdFlags.None);
        Assert.That(withDefault.CloseOnExec, Is.True);
        Assert.That(withoutFlag.CloseOnExec, Is.False);
    }
}
