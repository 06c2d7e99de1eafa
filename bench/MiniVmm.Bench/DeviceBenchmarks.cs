using BenchmarkDotNet.Attributes;
using MiniVmm.Devices.Samples;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Bench;

/// <summary>
/// The sample devices of <c>src/Devices</c> saved and loaded as a switchover does, through a
/// registry and the savevm writer and loader (section headers keyed by device id, footers,
/// vmdesc): 64 <see cref="CounterDevice"/>s (the device-author example) and 64
/// <see cref="SampleDevice"/>s (every VMState field kind) per operation.
/// </summary>
[MemoryDiagnoser]
public class DeviceBenchmarks
{
    private const int Devices = 64;

    private readonly MemoryStream _buffer = new();
    private SaveStateRegistry _source = null!;
    private SaveStateRegistry _destination = null!;
    private byte[] _saved = [];

    /// <summary>Which sample device.</summary>
    [Params("x-counter", "x-sample")]
    public string Model { get; set; } = "x-counter";

    /// <summary>Builds both registries and a first stream.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _source = Registry(populated: true);
        _destination = Registry(populated: false);
        _saved = Save();
    }

    /// <summary>Every device's FULL section, then EOF and the vmdesc.</summary>
    [Benchmark]
    public int SaveAll() => Save().Length;

    /// <summary>Loads the stream into the destination's devices, matched by id.</summary>
    [Benchmark]
    public LoadResult LoadAll()
    {
        using var reader = new MigrationStreamReader(new MemoryStream(_saved, writable: false));
        var bql = new MiniVmm.Runstate.BigLock();
        using MiniVmm.Runstate.BigLock.Scope held = bql.Acquire();
        return new SaveStateLoader(_destination, new SavevmOptions(), bql).Load(reader);
    }

    private byte[] Save()
    {
        _buffer.SetLength(0);
        using (var stream = new MigrationStreamWriter(_buffer, leaveOpen: true))
        {
            var bql = new MiniVmm.Runstate.BigLock();
            var writer = new SaveStateWriter(_source, stream, new SavevmOptions(), bql);
            writer.WriteHeader();
            writer.Setup();
            using (bql.Acquire())
            {
                writer.CompletePrecopy();
                writer.Cleanup();
            }
        }

        return _buffer.ToArray();
    }

    private SaveStateRegistry Registry(bool populated)
    {
        var registry = new SaveStateRegistry();
        for (int i = 0; i < Devices; i++)
        {
            ISaveStateDevice device = Model == "x-counter"
                ? new CounterDevice($"c{i}", populated ? (uint)(i * 1000) : 0)
                : new SampleDevice($"s{i}", populated ? (ulong)i + 1 : 0);
            device.Register(registry);
        }

        return registry;
    }
}
