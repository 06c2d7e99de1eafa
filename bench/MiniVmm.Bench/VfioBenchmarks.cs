using BenchmarkDotNet.Attributes;
using MiniVmm.Native;
using MiniVmm.Vfio;

namespace MiniVmm.Bench;

/// <summary>
/// VFIO device state transfer: a <see cref="DmaEngineDevice"/> with 256 MiB of state is saved
/// through its STOP_COPY data fd (a pipe fed by the device's producer thread), written 1 MiB at a
/// time into a second device's RESUMING data fd (a memfd), and loaded by RESUMING→STOP. GB/s is
/// 10^9 data-fd bytes per second, for the whole round trip including the arcs.
/// </summary>
[MemoryDiagnoser]
[ThroughputColumn]
public class VfioBenchmarks
{
    private const int StateMiB = 256;
    private const int Chunks = StateMiB * 1024 * 1024 / DmaEngineDevice.ChunkSize;
    // Header record, every chunk with its 12-byte record header, registers record, end record.
    private const long StreamBytes = 36 + Chunks * (12L + DmaEngineDevice.ChunkSize) + 44 + 12;

    private readonly byte[] _buffer = new byte[1024 * 1024];
    private DmaEngineDevice _source = null!;
    private DmaEngineDevice _destination = null!;

    /// <summary>Creates the two devices (no background DMA) with different power-on states.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var memory = new DiscardingGuestMemory(1 << 20);
        _source = new DmaEngineDevice(memory, new DmaEngineOptions { StateSizeMiB = StateMiB, RunWorker = false, Seed = 1, Name = "bench-source" });
        _destination = new DmaEngineDevice(memory, new DmaEngineOptions { StateSizeMiB = StateMiB, RunWorker = false, Seed = 2, Name = "bench-destination" });
        _source.PerformDma(1000);
        _source.SetState(VfioDeviceState.Stop);
    }

    /// <summary>Checks the last transfer, then releases the devices.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        bool equal = _source.StateDigest().AsSpan().SequenceEqual(_destination.StateDigest());
        _source.Dispose();
        _destination.Dispose();
        if (!equal)
        {
            throw new InvalidOperationException("The destination's state digest differs from the source's");
        }
    }

    /// <summary>STOP→STOP_COPY, read to EOF into RESUMING, RESUMING→STOP, STOP_COPY→STOP.</summary>
    [Benchmark]
    [BytesPerOperation(StreamBytes)]
    public long SaveAndLoad256MiB()
    {
        using FileDescriptorHandle resume = _destination.SetState(VfioDeviceState.Resuming)!;
        long total = 0;
        using (FileDescriptorHandle save = _source.SetState(VfioDeviceState.StopCopy)!)
        {
            int count;
            while ((count = _source.ReadData(save, _buffer)) > 0)
            {
                resume.WriteAll(_buffer.AsSpan(0, count));
                total += count;
            }
        }
        _destination.SetState(VfioDeviceState.Stop);
        _source.SetState(VfioDeviceState.Stop);
        if (total != StreamBytes)
        {
            throw new InvalidOperationException($"Transferred {total} bytes, expected {StreamBytes}");
        }
        return total;
    }
}
