using MiniVmm.Devices.Models;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Devices.Samples;

/// <summary>
/// <c>-device x-counter,id=ID[,start=N][,verbose=on]</c>: the example of docs/adding-a-device.md,
/// written the way a device author writes one: one class, whose constructor declares its
/// <c>-device</c> properties and whose VMState description says what migrates, registered with
/// one line, <c>services.AddDeviceModel&lt;CounterDevice&gt;("x-counter")</c>.
/// </summary>
public sealed class CounterDevice(
    [DeviceProperty("id", Description = "the device's id")] string id,
    [DeviceProperty("start", Description = "the first count")] uint start = 0,
    [DeviceProperty("verbose", Description = "talk more")] bool verbose = false) : ISaveStateDevice
{
    private static readonly VMStateDescription<CounterDevice> Description =
        VMStateDescription<CounterDevice>.Build("counter", version: 1, minimumVersion: 1)
            .UInt32("count", d => ref d._count)
            .Done();

    private uint _count = start;

    /// <summary>The VMState description (for the conformance kit).</summary>
    public static VMStateDescription<CounterDevice> Vmsd => Description;

    /// <summary>The id.</summary>
    public string Id => id;

    /// <summary>Whether verbose was asked for.</summary>
    public bool Verbose => verbose;

    /// <summary>The count.</summary>
    public uint Count => _count;

    /// <inheritdoc />
    public void Register(SaveStateRegistry registry) => registry.RegisterVMState(Description, this, devicePath: id);
}
