using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Testing;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Conformance;

/// <summary>
/// The conformance kit (<c>MiniVmm.Migration.Testing</c>) over the core's own sections: the
/// machine's <c>timer</c> and <c>globalstate</c> VMState descriptions and the <c>ram</c> live
/// handler. The host's devices are checked in the host's tests, VFIO in the VFIO tests.
/// </summary>
[TestFixture]
public sealed class InTreeConformanceTests
{
    [Test]
    public void Timer_passes_the_vmstate_checks() =>
        VMStateConformance.Check(
            TimerState.Vmsd,
            () => new TimerState { CpuTicksOffset = 0x1234_5678_9abc, CpuClockOffset = -77 },
            timer => timer.CpuClockOffset++);

    [Test]
    public void Globalstate_passes_the_vmstate_checks()
    {
        // A loaded globalstate is saved again with the VM's own state, as QEMU's is: a paused VM
        // that received "paused" sends "paused".
        var vm = new VirtualMachine(initial: RunState.Paused);
        VMStateConformance.Check(
            GlobalState.Vmsd,
            () =>
            {
                var state = new GlobalState(vm);
                state.Store(RunState.Paused);
                return state;
            },
            state => state.Store(RunState.Running));
    }

    [Test]
    public void Ram_passes_the_live_handler_checks()
    {
        const int size = 4 << 20;
        var memories = new Dictionary<ISaveVmHandlers, GuestMemory>(ReferenceEqualityComparer.Instance);
        try
        {
            LiveHandlerConformance.Check(
                () => Handler(fill: true),
                () => Handler(fill: false),
                (source, destination) => Assert.That(
                    Contents(destination).SequenceEqual(Contents(source)), Is.True, "the destination's RAM differs from the source's"),
                new LiveHandlerConformanceOptions { VersionId = 4, TruncationsPerSection = 96 });
        }
        finally
        {
            foreach (GuestMemory memory in memories.Values)
            {
                memory.Dispose();
            }
        }

        ISaveVmHandlers Handler(bool fill)
        {
            GuestMemory memory = GuestMemory.ForMachineNone(size);
            if (fill)
            {
                // Data pages, zero pages between them, and a page of one repeated byte.
                new Random(7).NextBytes(memory.Blocks[0].GetSpan(0x10000, 0x3000));
                memory.Blocks[0].GetSpan(0x200000, 4096).Fill(0x5a);
            }

            var handler = new RamMigrationHandler(memory, new VirtualMachine(initial: RunState.Paused));
            memories[handler] = memory;
            return handler;
        }

        byte[] Contents(ISaveVmHandlers handler) => memories[handler].Blocks[0].GetSpan(0, size).ToArray();
    }
}
