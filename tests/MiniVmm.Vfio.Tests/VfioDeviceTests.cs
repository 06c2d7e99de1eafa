using MiniVmm.Native;
using MiniVmm.Vfio;

namespace MiniVmm.Vfio.Tests;

/// <summary>The driver loop of the base class, with a device whose arcs can be made to fail.</summary>
public class VfioDeviceTests
{
    [Test]
    public void TheDriverLoopCallsOneArcPerStep()
    {
        using var device = new FailingArcDevice();
        using (FileDescriptorHandle? fd = device.SetState(VfioDeviceState.StopCopy))
        {
            Assert.That(fd, Is.Not.Null);
        }
        Assert.That(device.SetState(VfioDeviceState.Resuming), Is.Not.Null);
        Assert.That(device.Arcs, Is.EqualTo(new[] { "RunningToStop", "StopToStopCopy", "StopCopyToStop", "StopToResuming" }));
        Assert.That(device.SetState(VfioDeviceState.Resuming), Is.Null, "no arc when already there");
        Assert.That(device.Arcs, Has.Count.EqualTo(4));
    }

    [Test]
    public void AnInjectedArcFailureLeavesTheDeviceInErrorUntilReset()
    {
        using var device = new FailingArcDevice { FailingArc = "StopToStopCopy" };
        var error = Assert.Throws<VfioMigrationException>(() => device.SetState(VfioDeviceState.StopCopy));
        Assert.That(error!.Errno, Is.EqualTo(Errno.EIO));
        Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Error));

        foreach (VfioDeviceState state in new[] { VfioDeviceState.Running, VfioDeviceState.Stop, VfioDeviceState.StopCopy })
        {
            Assert.That(Assert.Throws<VfioMigrationException>(() => device.SetState(state))!.Errno, Is.EqualTo(Errno.EINVAL));
            Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Error));
        }
        Assert.That(device.SetState(VfioDeviceState.Error), Is.Null, "ERROR -> ERROR is the driver loop's no-op");
        Assert.Throws<VfioMigrationException>(() => device.PrecopyInfo());

        device.Reset();
        Assert.That(device.Resets, Is.EqualTo(1));
        Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Running));
        device.FailingArc = null;
        Assert.That(device.SetState(VfioDeviceState.StopCopy), Is.Not.Null);
    }

    [Test]
    public void AnArcFailingWithANativeErrorCarriesItsErrno()
    {
        using var device = new FailingArcDevice
        {
            FailingArc = "RunningToStop",
            Failure = new NativeCallException("write", Errno.ENOSPC),
        };
        var error = Assert.Throws<VfioMigrationException>(() => device.SetState(VfioDeviceState.Stop));
        Assert.That(error!.Errno, Is.EqualTo(Errno.ENOSPC));
        Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Error));

        device.Reset();
        device.Failure = new InvalidOperationException("bug");
        error = Assert.Throws<VfioMigrationException>(() => device.SetState(VfioDeviceState.Stop));
        Assert.That(error!.Errno, Is.EqualTo(Errno.EIO));
    }

    [Test]
    public void AStateMachineRefusalDoesNotEnterError()
    {
        using var device = new FailingArcDevice();
        Assert.That(Assert.Throws<VfioMigrationException>(() => device.SetState(VfioDeviceState.PreCopy))!.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Running));
        Assert.That(device.Arcs, Is.Empty);
    }

    [Test]
    public void DevicesWithoutLoggingSupportRefuseLoggingWithEnotty()
    {
        using var device = new FailingArcDevice();
        // FailingArcDevice keeps the default: logging supported; an empty start is EINVAL.
        Assert.That(Assert.Throws<VfioMigrationException>(() => device.DmaLoggingStart([], 4096))!.Errno, Is.EqualTo(Errno.EINVAL));
        device.DmaLoggingStop();
    }

    [Test]
    public void FlagsWithoutStopCopyCannotMakeADevice()
    {
        Assert.Throws<ArgumentException>(() => new FailingArcDevice(VfioMigrationFlags.None).Dispose());
        Assert.Throws<ArgumentException>(() => new FailingArcDevice(VfioMigrationFlags.P2P | VfioMigrationFlags.PreCopy).Dispose());
        Assert.Throws<ArgumentException>(() => new FailingArcDevice(VfioMigrationFlags.StopCopy | (VfioMigrationFlags)8).Dispose());
    }
}
