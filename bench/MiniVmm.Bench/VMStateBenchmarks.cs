using BenchmarkDotNet.Attributes;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Bench;

/// <summary>
/// Saving and loading one VMState device of a typical shape (a dozen registers, a 32-entry
/// register file, a counted queue, a 256-byte buffer, a nested struct and a subsection):
/// the per-device cost of the FULL sections at switchover.
/// </summary>
[MemoryDiagnoser]
public class VMStateBenchmarks
{
    private const int Devices = 1024;

    private static readonly VMStateDescription<TimerRegs> TimerVmsd =
        VMStateDescription<TimerRegs>.Build("bench-dev-timer", 1, 1)
            .Int64("expire", t => ref t.Expire)
            .UInt32("period", t => ref t.Period)
            .Bool("armed", t => ref t.Armed)
            .Done();

    private static readonly VMStateDescription<BenchDevice> ExtraVmsd =
        VMStateDescription<BenchDevice>.Build("bench-dev/extra", 1, 1)
            .UInt64("extra", d => ref d.Extra)
            .Done();

    private static readonly VMStateDescription<BenchDevice> Vmsd =
        VMStateDescription<BenchDevice>.Build("bench-dev", 3, 1)
            .UInt32("ctrl", d => ref d.Control)
            .UInt32("status", d => ref d.Status)
            .UInt16("irq", d => ref d.Irq)
            .UInt8("mode", d => ref d.Mode)
            .Bool("enabled", d => ref d.Enabled)
            .Int64("clock", d => ref d.Clock)
            .UInt64Array("regs", d => d.Registers)
            .UInt32("queue_len", d => ref d.QueueLength)
            .UInt32Array("queue", d => d.Queue, count: d => d.QueueLength)
            .Buffer("fifo", d => d.Fifo, sinceVersion: 2)
            .Struct("timer", d => d.Timer, TimerVmsd)
            .Subsection(ExtraVmsd, d => d.Extra != 0)
            .Done();

    private readonly BenchDevice _device = BenchDevice.Populated();
    private readonly BenchDevice _target = new();
    private MigrationStreamWriter _writer = null!;
    private MigrationStreamReader _reader = null!;

    /// <summary>Saves one image to measure it and to feed the loader.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var image = new MemoryStream();
        using (var once = new MigrationStreamWriter(image, leaveOpen: true))
        {
            Vmsd.Save(once, _device, null);
        }

        Console.WriteLine($"// one saved bench-dev is {image.Length} bytes");
        _writer = new MigrationStreamWriter(Stream.Null);
        _reader = new MigrationStreamReader(new RepeatingReadStream(image.ToArray()));
    }

    /// <summary>Releases the writer and reader.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _writer.Dispose();
        _reader.Dispose();
    }

    /// <summary>Saves the device 1024 times (no vmdesc).</summary>
    [Benchmark(OperationsPerInvoke = Devices)]
    public void Save()
    {
        for (int i = 0; i < Devices; i++)
        {
            Vmsd.Save(_writer, _device, null);
        }
    }

    /// <summary>Saves the device 1024 times, building the vmdesc JSON each time (the switchover path).</summary>
    [Benchmark(OperationsPerInvoke = Devices)]
    public void SaveWithVmDescription()
    {
        for (int i = 0; i < Devices; i++)
        {
            var vmdesc = new VmDescriptionWriter();
            vmdesc.StartObject();
            Vmsd.Save(_writer, _device, vmdesc);
            vmdesc.EndObject();
        }
    }

    /// <summary>Loads the device 1024 times.</summary>
    [Benchmark(OperationsPerInvoke = Devices)]
    public void Load()
    {
        for (int i = 0; i < Devices; i++)
        {
            Vmsd.Load(_reader, _target, 3);
        }
    }

    private sealed class TimerRegs
    {
        public long Expire;
        public uint Period;
        public bool Armed;
    }

    private sealed class BenchDevice
    {
        public uint Control;
        public uint Status;
        public ushort Irq;
        public byte Mode;
        public bool Enabled;
        public long Clock;
        public ulong[] Registers = new ulong[32];
        public uint QueueLength;
        public uint[] Queue = new uint[64];
        public byte[] Fifo = new byte[256];
        public TimerRegs Timer = new();
        public ulong Extra;

        public static BenchDevice Populated()
        {
            var random = new Random(5);
            var device = new BenchDevice
            {
                Control = 0x8000_0001, Status = 7, Irq = 11, Mode = 3, Enabled = true, Clock = 123456789,
                QueueLength = 48, Extra = 42,
            };
            for (int i = 0; i < device.Registers.Length; i++)
            {
                device.Registers[i] = (ulong)random.NextInt64();
            }

            for (int i = 0; i < device.Queue.Length; i++)
            {
                device.Queue[i] = (uint)random.Next();
            }

            random.NextBytes(device.Fifo);
            device.Timer = new TimerRegs { Expire = 99, Period = 1000, Armed = true };
            return device;
        }
    }
}
