using MiniVmm.Devices.Models;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Devices.Samples;

/// <summary>
/// <c>-device x-sample,id=ID[,seed=N]</c>: a plain VMState device with registers, a counted
/// array, a buffer, a nested struct and a subsection, its contents derived from <c>seed</c>
/// (0 = all zero). It exists so that snapshots and migrations between two <c>minivmm run</c>
/// processes can be checked device by device (QMP <c>x-query-device</c>).
/// </summary>
public sealed class SampleDevice : ISaveStateDevice
{
    private static readonly VMStateDescription<SampleTimer> TimerDescription =
        VMStateDescription<SampleTimer>.Build("x-sample-timer", version: 1, minimumVersion: 1)
            .Int64("expire", t => ref t.Expire)
            .Bool("armed", t => ref t.Armed)
            .Done();

    private static readonly VMStateDescription<SampleDevice> ExtraDescription =
        VMStateDescription<SampleDevice>.Build("x-sample/extra", version: 1, minimumVersion: 1)
            .UInt64("extra", d => ref d._extra)
            .Done();

    private static readonly VMStateDescription<SampleDevice> Description =
        VMStateDescription<SampleDevice>.Build("x-sample", version: 2, minimumVersion: 1)
            .UInt32("control", d => ref d._control)
            .UInt16("status", d => ref d._status)
            .Int8("level", d => ref d._level)
            .UInt64Array("regs", d => d._registers)
            .UInt32("queue_len", d => ref d._queueLength)
            .UInt32Array("queue", d => d._queue, count: d => d._queueLength)
            .Buffer("scratch", d => d._scratch, sinceVersion: 2)
            .Struct("timer", d => d._timer, TimerDescription)
            .Subsection(ExtraDescription, d => d._extra != 0)
            .Done();

    private readonly ulong[] _registers = new ulong[8];
    private readonly uint[] _queue = new uint[16];
    private readonly byte[] _scratch = new byte[64];
    private readonly SampleTimer _timer = new();
    private uint _control;
    private ushort _status;
    private sbyte _level;
    private uint _queueLength;
    private ulong _extra;

    /// <summary>Creates the device <paramref name="id"/> with contents derived from <paramref name="seed"/>.</summary>
    public SampleDevice(
        [DeviceProperty("id", Description = "the device's id")] string id,
        [DeviceProperty("seed", Description = "derives every register from this number (0 = all zero)")] ulong seed = 0)
    {
        Id = id;
        if (seed == 0)
        {
            return;
        }

        var random = new Random(unchecked((int)seed ^ (int)(seed >> 32)));
        _control = (uint)random.Next();
        _status = (ushort)random.Next(ushort.MaxValue);
        _level = (sbyte)random.Next(sbyte.MinValue, sbyte.MaxValue);
        for (int i = 0; i < _registers.Length; i++)
        {
            _registers[i] = (ulong)random.NextInt64();
        }

        _queueLength = (uint)random.Next(1, _queue.Length + 1);
        for (int i = 0; i < _queueLength; i++)
        {
            _queue[i] = (uint)random.Next();
        }

        random.NextBytes(_scratch);
        _timer.Expire = random.NextInt64();
        _timer.Armed = true;
        _extra = seed % 2 == 1 ? (ulong)random.NextInt64() : 0;
    }

    /// <summary>The VMState description of the device (for conformance checks).</summary>
    public static VMStateDescription<SampleDevice> Vmsd => Description;

    /// <summary>The device id from <c>-device ...,id=</c>.</summary>
    public string Id { get; }

    /// <summary>Registers <c>ID/x-sample</c>: keyed by the device id, as QEMU keys qdev sections by device path.</summary>
    public void Register(SaveStateRegistry registry) => registry.RegisterVMState(Description, this, devicePath: Id);

    private sealed class SampleTimer
    {
        public long Expire;
        public bool Armed;
    }
}
