using MiniVmm.Native;

namespace MiniVmm.Native.Tests;

public sealed class NativeCallExceptionTests
{
    [Test]
    public void FtruncateOnAPipeFailsWithEinval()
    {
        using PipeEnds pipe = Pipe.Create();
        var error = Assert.Throws<NativeCallException>(() => pipe.Write.Truncate(4096));
        Assert.That(error!.Call, Is.EqualTo("ftruncate"));
        Assert.That(error.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(error.ErrnoName, Is.EqualTo("EINVAL"));
        Assert.That(error.Message, Does.StartWith($"ftruncate(fd {pipe.Write.Number}, 4096) failed: EINVAL (22): "));
    }

    [Test]
    public void MmapOfLengthZeroFailsWithEinval()
    {
        var error = Assert.Throws<NativeCallException>(
            () => MemoryMapping.Map(null, 0, 0, MemoryProtection.ReadWrite, MappingFlags.Private));
        Assert.That(error!.Call, Is.EqualTo("mmap"));
        Assert.That(error.Errno, Is.EqualTo(Errno.EINVAL));
    }

    [Test]
    public void UnknownIoctlOnAMemfdFailsWithEnotty()
    {
        using FileDescriptorHandle memfd = Memfd.Create("ioctl-target");
        var error = Assert.Throws<NativeCallException>(() => memfd.Ioctl(0x1234_5678, 0));
        Assert.That(error!.Call, Is.EqualTo("ioctl"));
        Assert.That(error.Errno, Is.EqualTo(Errno.ENOTTY));
        Assert.That(error.Message, Does.Contain("0x12345678").And.Contain("ENOTTY (25)"));
    }

    [Test]
    public void MemfdCreateErrorNamesTheFileName()
    {
        string tooLong = new('x', 300);
        var error = Assert.Throws<NativeCallException>(() => Memfd.Create(tooLong));
        Assert.That(error!.Call, Is.EqualTo("memfd_create"));
        Assert.That(error.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(error.Message, Does.StartWith($"memfd_create(\"{tooLong}\") failed: EINVAL (22): "));
    }

    [Test]
    public void MessageCarriesCallArgumentsNameNumberAndDescription()
    {
        var error = new NativeCallException("memfd_create", Errno.ENOMEM, "\"guest-ram\"");
        Assert.That(error.Message, Is.EqualTo("memfd_create(\"guest-ram\") failed: ENOMEM (12): Cannot allocate memory"));
        Assert.That(error, Is.InstanceOf<IOException>());
    }

    [TestCase(Errno.EAGAIN, "EAGAIN")]
    [TestCase(Errno.ENOMSG, "ENOMSG")]
    [TestCase(Errno.EOPNOTSUPP, "EOPNOTSUPP")]
    [TestCase(Errno.ERANGE, "ERANGE")]
    [TestCase(4095, "errno 4095")]
    public void ErrnoNamesAreSymbolic(int errno, string name)
    {
        Assert.That(Errno.NameOf(errno), Is.EqualTo(name));
        Assert.That(new NativeCallException("close", errno).ErrnoName, Is.EqualTo(name));
    }
}
