using BenchmarkDotNet.Attributes;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Bench;

/// <summary>
/// RAM migration costs over 1 GiB of guest RAM: the zero-page scan, the dirty-log harvest, a
/// whole save (setup, iterations without rate limit, completion) into <see cref="Stream.Null"/>
/// of random and of zero RAM, and a load of a saved stream held in memory. GB/s is 10^9 bytes
/// of guest RAM per second.
/// </summary>
[MemoryDiagnoser]
[ThroughputColumn]
public class RamBenchmarks
{
    private const long Size = 1L << 30;
    private const int PageSize = 4096;

    private VirtualMachine _vm = null!;
    private GuestMemory _memory = null!;
    private RamMigrationHandler _ram = null!;
    private SaveStateRegistry _registry = null!;
    private byte[] _stream = [];
    private ulong[] _harvest = [];

    /// <summary>Random guest RAM (every page written).</summary>
    [GlobalSetup(Targets = [nameof(SaveRandom), nameof(Harvest)])]
    public void SetupRandom()
    {
        CreateMachine();
        byte[] chunk = new byte[64 << 20];
        new Random(1).NextBytes(chunk);
        for (long at = 0; at < Size; at += chunk.Length)
        {
            _memory.Write(at, chunk);
        }

        _harvest = new ulong[_memory.Blocks[0].DirtyBitmap.WordCount];
    }

    /// <summary>All-zero guest RAM whose pages are allocated (written with zeros), so the scan reads memory.</summary>
    [GlobalSetup(Targets = [nameof(ZeroScan), nameof(ZeroScanIndexOfAnyExcept), nameof(ZeroScanOneSpan), nameof(SaveZeroAllocated)])]
    public void SetupZeroAllocated()
    {
        CreateMachine();
        for (long at = 0; at < Size; at += 64 << 20)
        {
            _memory.Blocks[0].GetSpan(at, 64 << 20).Clear();
        }
    }

    /// <summary>Guest RAM never written: every page is a memfd hole.</summary>
    [GlobalSetup(Target = nameof(SaveZeroUntouched))]
    public void SetupUntouched() => CreateMachine();

    /// <summary>A saved stream of random RAM, loaded into a fresh machine whose pages are already allocated.</summary>
    [GlobalSetup(Target = nameof(Load))]
    public void SetupLoad()
    {
        SetupRandom();
        using var output = new MemoryStream((int)(Size + (Size >> 8)));
        using (var writer = new MigrationStreamWriter(output, leaveOpen: true))
        {
            Save(writer);
        }

        _stream = output.ToArray();
    }

    /// <summary>Releases the machine.</summary>
    [GlobalCleanup]
    public void Cleanup() => _memory.Dispose();

    /// <summary><see cref="ZeroPage.IsZero"/> on every page of 1 GiB of allocated zero RAM.</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public int ZeroScan()
    {
        RamBlock block = _memory.Blocks[0];
        int zero = 0;
        for (long page = 0; page < block.PageCount; page++)
        {
            zero += ZeroPage.IsZero(block.GetPage(page)) ? 1 : 0;
        }

        return zero;
    }

    /// <summary>The baseline: <c>IndexOfAnyExcept((byte)0) &lt; 0</c> on every page.</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public int ZeroScanIndexOfAnyExcept()
    {
        RamBlock block = _memory.Blocks[0];
        int zero = 0;
        for (long page = 0; page < block.PageCount; page++)
        {
            zero += block.GetPage(page).IndexOfAnyExcept((byte)0) < 0 ? 1 : 0;
        }

        return zero;
    }

    /// <summary>The ceiling: one <see cref="ZeroPage.IsZero"/> over the whole 1 GiB (no per-page work).</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public bool ZeroScanOneSpan() => ZeroPage.IsZero(_memory.Blocks[0].GetSpan(0, (int)Size));

    /// <summary>Marks every page of 1 GiB dirty (one atomic OR per 64 pages), then harvests them all.</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public long Harvest()
    {
        DirtyBitmap bitmap = _memory.Blocks[0].DirtyBitmap;
        bitmap.MarkRange(0, bitmap.PageCount);
        Array.Clear(_harvest);
        return bitmap.HarvestInto(_harvest);
    }

    /// <summary>Saves 1 GiB of random RAM (setup, iterations, completion) into a null sink.</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public long SaveRandom() => SaveToNull();

    /// <summary>Saves 1 GiB of allocated zero RAM into a null sink (every page scanned).</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public long SaveZeroAllocated() => SaveToNull();

    /// <summary>Saves 1 GiB of never-written RAM into a null sink (holes found with SEEK_DATA).</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public long SaveZeroUntouched() => SaveToNull();

    /// <summary>Loads the saved stream of 1 GiB random RAM from memory.</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public long Load()
    {
        using var reader = new MigrationStreamReader(new MemoryStream(_stream, writable: false));
        using (_vm.Bql.Acquire())
        {
            return new SaveStateLoader(_registry, new SavevmOptions(), _vm.Bql).Load(reader).BytesRead;
        }
    }

    private long SaveToNull()
    {
        using var writer = new MigrationStreamWriter(Stream.Null);
        Save(writer);
        return writer.BytesWritten;
    }

    private void Save(MigrationStreamWriter writer)
    {
        var save = new SaveStateWriter(_registry, writer, new SavevmOptions(), _vm.Bql);
        save.WriteHeader();
        save.Setup();
        while (save.Iterate() != IterationOutcome.Finished)
        {
            writer.StartNewRateWindow();
        }

        using (_vm.Bql.Acquire())
        {
            save.CompletePrecopy();
            save.Cleanup();
        }
    }

    private void CreateMachine()
    {
        _vm = new VirtualMachine();
        _memory = GuestMemory.ForMachineNone(Size);
        _ram = new RamMigrationHandler(_memory, _vm);
        _registry = new SaveStateRegistry();
        new TimerState().Register(_registry);
        InactiveLiveSection.BlockMigration().Register(_registry);
        _ram.Register(_registry);
        InactiveLiveSection.DirtyBitmapMigration().Register(_registry);
        new GlobalState(_vm).Register(_registry);
    }
}
