using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Machine;

/// <summary>
/// The <c>timer</c> section QEMU sends for every machine (the virtual clock's offsets:
/// <c>cpu_ticks_offset</c>, 8 unused bytes, <c>cpu_clock_offset</c> since version 2). MiniVmm
/// has no virtual CPU clock of its own; the values travel unchanged so a stream from QEMU
/// round-trips and QEMU accepts ours.
/// </summary>
public sealed class TimerState : ISaveStateDevice
{
    private static readonly VMStateDescription<TimerState> Description =
        VMStateDescription<TimerState>.Build("timer", version: 2, minimumVersion: 1)
            .Int64("cpu_ticks_offset", state => ref state.CpuTicksOffset)
            .Unused(8)
            .Int64("cpu_clock_offset", state => ref state.CpuClockOffset, sinceVersion: 2)
            .Done();

    /// <summary>QEMU's <c>cpu_ticks_offset</c>.</summary>
    public long CpuTicksOffset;

    /// <summary>QEMU's <c>cpu_clock_offset</c>.</summary>
    public long CpuClockOffset;

    /// <summary>The VMState description of the section.</summary>
    public static VMStateDescription<TimerState> Vmsd => Description;

    /// <inheritdoc />
    public void Register(SaveStateRegistry registry) => registry.RegisterVMState(Description, this, instanceId: 0);
}
