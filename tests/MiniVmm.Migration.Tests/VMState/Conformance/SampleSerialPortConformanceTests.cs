using MiniVmm.Migration.Testing;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Tests.VMState.Conformance;

/// <summary>A small UART-like device described with most field kinds, checked by <see cref="VMStateConformance"/>.</summary>
public sealed class SampleSerialPortConformanceTests
{
    [Test]
    public void Sample_serial_port_passes_the_conformance_checks() =>
        VMStateConformance.Check(SampleSerialPort.Description, SampleSerialPort.Populated, s => s.Divider++);

    [Test]
    public void A_mutator_that_changes_nothing_is_reported()
    {
        Assert.That(
            () => VMStateConformance.Check(SampleSerialPort.Description, SampleSerialPort.Populated, _ => { }),
            Throws.InstanceOf<AssertionException>());
    }

    [Test]
    public void A_subsection_not_sent_for_the_populated_state_is_reported()
    {
        Assert.That(
            () => VMStateConformance.Check(SampleSerialPort.Description, () =>
            {
                SampleSerialPort port = SampleSerialPort.Populated();
                port.TimeoutPending = false;
                return port;
            }, s => s.Divider++),
            Throws.InstanceOf<AssertionException>());
    }

    private sealed class SampleSerialPort
    {
        public static readonly VMStateDescription<LineStatus> LineStatusDescription =
            VMStateDescription<LineStatus>.Build("sample-serial-line", 1, 1)
                .Bool("break", s => ref s.Break)
                .UInt8("errors", s => ref s.Errors)
                .Done();

        public static readonly VMStateDescription<SampleSerialPort> TimeoutDescription =
            VMStateDescription<SampleSerialPort>.Build("sample-serial/timeout", 1, 1)
                .Int64("timeout_ns", s => ref s.TimeoutNs)
                .Needed(s => s.TimeoutPending)
                .Done();

        public static readonly VMStateDescription<SampleSerialPort> Description =
            VMStateDescription<SampleSerialPort>.Build("sample-serial", version: 3, minimumVersion: 2)
                .UInt16("divider", s => ref s.Divider)
                .UInt8Array("regs", s => s.Registers)
                .UInt8("fifo_count", s => ref s.FifoCount)
                .UInt8Array("fifo", s => s.Fifo, count: s => s.FifoCount)
                .Struct("line", s => s.Line, LineStatusDescription)
                .Unused(2)
                .UInt32("scratch", s => ref s.Scratch, sinceVersion: 3)
                .Subsection(TimeoutDescription)
                .PreLoad(s => s.TimeoutPending = false)
                .PostLoad((s, _) =>
                {
                    s.TimeoutPending = s.TimeoutNs != 0;
                })
                .Done();

        public ushort Divider;
        public byte[] Registers = new byte[8];
        public byte FifoCount;
        public byte[] Fifo = new byte[16];
        public LineStatus Line = new();
        public uint Scratch;
        public long TimeoutNs;
        public bool TimeoutPending;

        public static SampleSerialPort Populated() => new()
        {
            Divider = 12,
            Registers = [1, 2, 3, 4, 5, 6, 7, 8],
            FifoCount = 3,
            Fifo = [0x41, 0x42, 0x43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            Line = new LineStatus { Break = true, Errors = 2 },
            Scratch = 0xdeadbeef,
            TimeoutNs = 1_000_000,
            TimeoutPending = true,
        };
    }

    private sealed class LineStatus
    {
        public bool Break;
        public byte Errors;
    }
}
