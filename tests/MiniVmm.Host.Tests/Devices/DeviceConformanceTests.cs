using MiniVmm.Devices.Samples;
using MiniVmm.Host.Guest;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Testing;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Tests.Devices;

/// <summary>
/// The conformance kit over the host's devices: <c>x-sample</c>, the built-in dirtying guest's
/// <c>x-dirty-guest</c> section and the test's <see cref="CounterDevice"/>, written as a device
/// author would (only <c>MiniVmm.Migration.Testing</c> and the device).
/// </summary>
[TestFixture]
public sealed class DeviceConformanceTests
{
    [Test]
    public void The_sample_device_passes_the_vmstate_checks() =>
        VMStateConformance.Check(
            SampleDevice.Vmsd,
            () => new SampleDevice("s0", seed: 3),
            device => VMStateBytes.Load(SampleDevice.Vmsd, VMStateBytes.Save(SampleDevice.Vmsd, new SampleDevice("s0", seed: 5)), device));

    [Test]
    public void The_counter_example_passes_the_vmstate_checks() =>
        VMStateConformance.Check(
            CounterDevice.Vmsd,
            () => new CounterDevice("c0", start: 41),
            device => VMStateBytes.Load(CounterDevice.Vmsd, VMStateBytes.Save(CounterDevice.Vmsd, new CounterDevice("c0", start: 7)), device));

    [Test]
    public void The_dirtying_guest_position_passes_the_vmstate_checks()
    {
        using GuestMemory memory = GuestMemory.ForMachineNone(4 << 20);
        var vm = new VirtualMachine(initial: RunState.Paused);
        var guests = new List<DirtyingGuest>();
        try
        {
            DirtyingGuest Create()
            {
                var guest = new DirtyingGuest(memory, vm, pagesPerSecond: 0);
                guests.Add(guest);
                return guest;
            }

            // A position other than the start: run a moving guest briefly, then save it. A guest
            // that stops right after a whole round is back at the start, so run it again then.
            DirtyingGuest moved = Create();
            byte[] start = VMStateBytes.Save(DirtyingGuest.Vmsd, moved);
            byte[] elsewhere;
            do
            {
                long before = moved.PagesWritten;
                using (vm.Bql.Acquire())
                {
                    vm.Start().ThrowIfFailed();
                }

                while (moved.PagesWritten < before + 100)
                {
                    Thread.Sleep(1);
                }

                using (vm.Bql.Acquire())
                {
                    vm.Stop(RunState.Paused).ThrowIfFailed();
                }

                elsewhere = VMStateBytes.Save(DirtyingGuest.Vmsd, moved);
            }
            while (elsewhere.AsSpan().SequenceEqual(start));

            VMStateConformance.Check(DirtyingGuest.Vmsd, Create, guest => VMStateBytes.Load(DirtyingGuest.Vmsd, elsewhere, guest));
        }
        finally
        {
            guests.ForEach(g => g.Dispose());
        }
    }

    [Test]
    public void The_adding_a_device_page_shows_the_counter_example_as_it_is_in_src_devices()
    {
        string root = Path.GetDirectoryName(MiniVmm.Tests.Shared.QemuFixtures.Qemu72)!;
        while (!File.Exists(Path.Combine(root, "MiniVmm.sln")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        string page = File.ReadAllText(Path.Combine(root, "docs", "adding-a-device.md"));
        string source = File.ReadAllText(Path.Combine(root, "src", "Devices", "Samples", "CounterDevice.cs"));
        int start = page.IndexOf("```csharp\n", StringComparison.Ordinal) + "```csharp\n".Length;
        string shown = page[start..page.IndexOf("```", start, StringComparison.Ordinal)];

        Assert.That(shown.TrimEnd(), Is.EqualTo(source.TrimEnd()), "docs/adding-a-device.md and src/Devices/Samples/CounterDevice.cs differ");
    }
}
