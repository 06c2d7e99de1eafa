using BenchmarkDotNet.Attributes;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Bench;

/// <summary>
/// Throughput of the migration byte stream. Writers go into <see cref="Stream.Null"/> (the
/// cost of the writer alone); readers come from an endless in-memory stream that copies like
/// a socket read. Times are per value or per page; GB/s is 10^9 stream bytes per second.
/// </summary>
[MemoryDiagnoser]
[ThroughputColumn]
public class StreamBenchmarks
{
    private const int Values = 1 << 20;       // be64 values per invocation: 8 MiB
    private const int Pages = 1 << 16;        // 4 KiB pages per invocation: 256 MiB
    private const int PageSize = 4096;

    private readonly byte[] _page = new byte[PageSize];
    private MigrationStreamWriter _writer = null!;
    private MigrationStreamReader _reader = null!;

    /// <summary>Creates one writer and one reader reused by every invocation.</summary>
    [GlobalSetup]
    public void Setup()
    {
        new Random(1).NextBytes(_page);
        byte[] pattern = new byte[1024 * 1024];
        new Random(2).NextBytes(pattern);
        _writer = new MigrationStreamWriter(Stream.Null);
        _reader = new MigrationStreamReader(new RepeatingReadStream(pattern));
    }

    /// <summary>Releases the writer and reader.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _writer.Dispose();
        _reader.Dispose();
    }

    /// <summary>PutBe64 of 1 Mi values.</summary>
    [Benchmark(OperationsPerInvoke = Values)]
    [BytesPerOperation(8)]
    public void PutBe64()
    {
        MigrationStreamWriter writer = _writer;
        for (ulong i = 0; i < Values; i++)
        {
            writer.PutBe64(i);
        }
    }

    /// <summary>GetBe64 of 1 Mi values.</summary>
    [Benchmark(OperationsPerInvoke = Values)]
    [BytesPerOperation(8)]
    public ulong GetBe64()
    {
        MigrationStreamReader reader = _reader;
        ulong sum = 0;
        for (int i = 0; i < Values; i++)
        {
            sum += reader.GetBe64();
        }

        return sum;
    }

    /// <summary>PutBuffer of 64 Ki pages of 4 KiB (256 MiB).</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    [BytesPerOperation(PageSize)]
    public void PutPage()
    {
        MigrationStreamWriter writer = _writer;
        ReadOnlySpan<byte> page = _page;
        for (int i = 0; i < Pages; i++)
        {
            writer.PutBuffer(page);
        }
    }

    /// <summary>ReadExactly of 64 Ki pages of 4 KiB (256 MiB).</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    [BytesPerOperation(PageSize)]
    public byte ReadPage()
    {
        MigrationStreamReader reader = _reader;
        Span<byte> page = _page;
        for (int i = 0; i < Pages; i++)
        {
            reader.ReadExactly(page);
        }

        return page[0];
    }

    /// <summary>A RAM record as the RAM saver writes it: be64 address|flags then a 4 KiB page, 64 Ki times.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    [BytesPerOperation(8 + PageSize)]
    public void PutRamRecord()
    {
        MigrationStreamWriter writer = _writer;
        ReadOnlySpan<byte> page = _page;
        for (int i = 0; i < Pages; i++)
        {
            writer.PutBe64(((ulong)i << 12) | 0x08);
            writer.PutBuffer(page);
        }
    }

    /// <summary>Reads back RAM records: be64 address|flags then a 4 KiB page, 64 Ki times.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    [BytesPerOperation(8 + PageSize)]
    public ulong GetRamRecord()
    {
        MigrationStreamReader reader = _reader;
        Span<byte> page = _page;
        ulong flags = 0;
        for (int i = 0; i < Pages; i++)
        {
            flags |= reader.GetBe64();
            reader.ReadExactly(page);
        }

        return flags;
    }
}
