using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Bench;

/// <summary>
/// Making 256 MiB of fresh memfd guest RAM resident, the cost a destination pays before or while
/// pages land: a write to the first byte of every page (what the loader's copies did before
/// anything populated ahead), <c>-mem-prealloc</c> (RAM created preallocated: MADV_POPULATE_WRITE
/// on one thread per core), and the background <see cref="IncomingRamPrefault"/> of a waiting
/// destination run to its end. Each invocation gets new RAM.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5)]
[ThroughputColumn]
public class PrefaultBenchmarks
{
    private const long Size = 256L << 20;
    private GuestMemory _memory = null!;

    /// <summary>Fresh, untouched RAM for the next invocation.</summary>
    [IterationSetup]
    public void CreateMemory() => _memory = GuestMemory.ForMachineNone(Size);

    /// <summary>Releases the RAM.</summary>
    [IterationCleanup]
    public void ReleaseMemory() => _memory.Dispose();

    /// <summary>One write per page: a fault (and a host fault in a VM) each.</summary>
    [Benchmark(Baseline = true)]
    [BytesPerOperation(Size)]
    public void TouchEveryPage()
    {
        RamBlock block = _memory.Blocks[0];
        for (long offset = 0; offset < Size; offset += RamBlock.PageSize)
        {
            block.GetSpan(offset, 1)[0] = 1;
        }
    }

    /// <summary><c>-mem-prealloc</c>: a second block of the same size created preallocated (the untouched one beside it costs nothing).</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public void MemPrealloc()
    {
        using GuestMemory preallocated = GuestMemory.ForMachineNone("pc.ram", Size, new RamBlockBacking { Preallocate = true });
    }

    /// <summary>The background prefault of a waiting destination, until it has populated all RAM.</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public void BackgroundPrefault()
    {
        using var prefault = new IncomingRamPrefault(_memory);
        prefault.Start();
        while (prefault.Outcome == IncomingRamPrefaultOutcome.Running || prefault.Outcome == IncomingRamPrefaultOutcome.NotStarted)
        {
            Thread.Sleep(1);
        }
    }
}
