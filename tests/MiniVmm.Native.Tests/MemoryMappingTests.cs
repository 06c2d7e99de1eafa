using MiniVmm.Native;

namespace MiniVmm.Native.Tests;

public sealed class MemoryMappingTests
{
    [Test]
    public void DontNeedOnPrivateAnonymousMemoryReadsBackZero()
    {
        int page = SystemPage.Size;
        using var mapping = MemoryMapping.Map(null, 0, 4 * page, MemoryProtection.ReadWrite, MappingFlags.Private);
        mapping.GetSpan(0, 4 * page).Fill(0xAB);

        mapping.Advise(page, 2 * page, MemoryAdvice.DontNeed);

        Assert.That(mapping.GetSpan(0, page).IndexOfAnyExcept((byte)0xAB), Is.EqualTo(-1), "page 0 untouched");
        Assert.That(mapping.GetSpan(page, 2 * page).IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "pages 1-2 zeroed");
        Assert.That(mapping.GetSpan(3 * page, page).IndexOfAnyExcept((byte)0xAB), Is.EqualTo(-1), "page 3 untouched");
    }

    [Test]
    public unsafe void PointerAddressAndLengthDescribeTheRegion()
    {
        using var mapping = MemoryMapping.Map(null, 0, 8192, MemoryProtection.ReadWrite, MappingFlags.Private | MappingFlags.NoReserve);
        Assert.That((nint)mapping.Pointer, Is.EqualTo(mapping.Address));
        Assert.That(SystemPage.IsAligned(mapping.Address), Is.True);
        Assert.That(mapping.Length, Is.EqualTo(8192));
        mapping.Pointer[8191] = 7;
        Assert.That(mapping.GetSpan(8191, 1)[0], Is.EqualTo(7));
    }

    [Test]
    public void GetSpanRejectsRangesOutsideTheMapping()
    {
        using var mapping = MemoryMapping.Map(null, 0, 4096, MemoryProtection.ReadWrite, MappingFlags.Private);
        Assert.That(() => mapping.GetSpan(4000, 97).Length, Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => mapping.GetSpan(-1, 1).Length, Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => mapping.GetSpan(0, -1).Length, Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => mapping.Advise(0, 8192, MemoryAdvice.DontNeed), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(mapping.GetSpan(4000, 96).Length, Is.EqualTo(96));
        Assert.That(mapping.GetSpan(4096, 0).Length, Is.Zero);
    }

    [TestCase(MemoryAdvice.HugePage)]
    [TestCase(MemoryAdvice.PopulateWrite)]
    public void OptionalAdviceSucceedsOrIsRejectedAsInvalid(MemoryAdvice advice)
    {
        long length = 4L << 20;
        using var mapping = MemoryMapping.Map(null, 0, length, MemoryProtection.ReadWrite, MappingFlags.Private | MappingFlags.NoReserve);
        try
        {
            mapping.Advise(0, length, advice);
        }
        catch (NativeCallException error)
        {
            // Kernels without THP or older than 5.14 reject these with EINVAL.
            Assert.That(error.Errno, Is.EqualTo(Errno.EINVAL));
        }
    }

    [Test]
    public void DisposeTwiceIsHarmlessAndLaterUseThrows()
    {
        var mapping = MemoryMapping.Map(null, 0, 4096, MemoryProtection.ReadWrite, MappingFlags.Private);
        mapping.Dispose();
        Assert.That(mapping.Dispose, Throws.Nothing);
        Assert.That(mapping.IsDisposed, Is.True);
        Assert.That(() => mapping.GetSpan(0, 1).Length, Throws.InstanceOf<ObjectDisposedException>());
        Assert.That(() => mapping.Address, Throws.InstanceOf<ObjectDisposedException>());
    }
}
