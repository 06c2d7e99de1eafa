using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Tests.Savevm;

[TestFixture]
public sealed class SavevmServiceCollectionTests
{
    /// <summary>A device that takes part in migration with one class and one line of registration.</summary>
    public sealed class UartDevice : ISaveStateDevice
    {
        private static readonly VMStateDescription<UartDevice> Description =
            VMStateDescription<UartDevice>.Build("uart", version: 3, minimumVersion: 1)
                .UInt8("line_control", uart => ref uart.LineControl)
                .UInt16("divisor", uart => ref uart.Divisor)
                .UInt8Array("fifo", uart => uart.Fifo)
                .Done();

        public byte LineControl;
        public ushort Divisor;
        public byte[] Fifo = new byte[16];

        public void Register(SaveStateRegistry registry) => registry.RegisterVMState(Description, this);
    }

    /// <summary>A second device class, registered after <see cref="UartDevice"/>.</summary>
    public sealed class RtcDevice : ISaveStateDevice
    {
        private static readonly VMStateDescription<RtcDevice> Description =
            VMStateDescription<RtcDevice>.Build("rtc", version: 1, minimumVersion: 1)
                .Int64("base_seconds", rtc => ref rtc.BaseSeconds)
                .Done();

        public long BaseSeconds;

        public void Register(SaveStateRegistry registry) => registry.RegisterVMState(Description, this);
    }

    private static ServiceProvider Container()
    {
        var services = new ServiceCollection();
        services.AddSaveStateDevice<UartDevice>();
        services.AddSaveStateDevice<RtcDevice>();
        return services.BuildServiceProvider();
    }

    [Test]
    public void TheContainersRegistryHasEveryDeviceInRegistrationOrder()
    {
        using ServiceProvider provider = Container();

        SaveStateRegistry registry = provider.GetRequiredService<SaveStateRegistry>();

        Assert.That(registry.Entries.Select(e => e.IdStr), Is.EqualTo(new[] { "uart", "rtc" }));
        Assert.That(registry.Entries[0].Owner, Is.SameAs(provider.GetRequiredService<UartDevice>()));
        Assert.That(registry.Entries[1].Owner, Is.SameAs(provider.GetRequiredService<RtcDevice>()));
        Assert.That(provider.GetServices<ISaveStateDevice>(), Has.Exactly(2).Items);
        Assert.That(provider.GetRequiredService<SaveStateRegistry>(), Is.SameAs(registry), "one registry per container");
    }

    [Test]
    public void AddSavevmAloneGivesAnEmptyRegistryAndDefaultOptions()
    {
        var services = new ServiceCollection();
        services.AddSavevm();
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.That(provider.GetRequiredService<SaveStateRegistry>().Entries, Is.Empty);
        Assert.That(provider.GetRequiredService<SavevmOptions>(), Is.EqualTo(new SavevmOptions()));
    }

    [Test]
    public void OptionsAddedBeforeTheDevicesAreKept()
    {
        var services = new ServiceCollection();
        var options = new SavevmOptions { MachineName = "microvm" };
        services.AddSingleton(options);
        services.AddSaveStateDevice<RtcDevice>();
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.That(provider.GetRequiredService<SavevmOptions>(), Is.SameAs(options));
    }

    [Test]
    public void ADeviceFromTheContainerRoundTrips()
    {
        using ServiceProvider source = Container();
        using ServiceProvider destination = Container();
        UartDevice uart = source.GetRequiredService<UartDevice>();
        uart.LineControl = 0x83;
        uart.Divisor = 12;
        uart.Fifo = [.. Enumerable.Range(0x40, 16).Select(i => (byte)i)];
        source.GetRequiredService<RtcDevice>().BaseSeconds = 1_700_000_000;

        byte[] bytes = SavevmHarness.Save(source.GetRequiredService<SaveStateRegistry>(), source.GetRequiredService<SavevmOptions>());
        LoadResult result = SavevmHarness.Load(
            destination.GetRequiredService<SaveStateRegistry>(), bytes, destination.GetRequiredService<SavevmOptions>());

        UartDevice loaded = destination.GetRequiredService<UartDevice>();
        Assert.That(loaded, Is.Not.SameAs(uart));
        Assert.That(loaded.LineControl, Is.EqualTo(0x83));
        Assert.That(loaded.Divisor, Is.EqualTo(12));
        Assert.That(loaded.Fifo, Is.EqualTo(uart.Fifo));
        Assert.That(destination.GetRequiredService<RtcDevice>().BaseSeconds, Is.EqualTo(1_700_000_000));
        Assert.That(result.Sections, Is.EqualTo(2));
    }

    [Test]
    public void AddingTheSameDeviceTwiceRegistersItOnce()
    {
        var services = new ServiceCollection();
        services.AddSaveStateDevice<UartDevice>();
        services.AddSaveStateDevice<RtcDevice>();
        services.AddSaveStateDevice<UartDevice>();
        using ServiceProvider provider = services.BuildServiceProvider();

        SaveStateRegistry registry = provider.GetRequiredService<SaveStateRegistry>();

        Assert.That(registry.Entries.Select(e => $"{e.IdStr}#{e.InstanceId}"), Is.EqualTo(new[] { "uart#0", "rtc#0" }));
        Assert.That(provider.GetServices<ISaveStateDevice>(), Has.Exactly(2).Items);
    }
}
