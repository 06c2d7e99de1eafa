using System.Security.Cryptography;
using System.Text.Json.Nodes;
using MiniVmm.Devices.Models;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Devices.Samples;

/// <summary>
/// <c>-device x-live-scratch,id=ID[,size-kib=N][,seed=N]</c>: a scratch memory of N KiB in 4 KiB
/// chunks that a background writer keeps changing while the VM runs (parked while it is
/// stopped), migrated live by <see cref="ChunkedLiveState"/> in the section
/// <c>ID/x-live-scratch</c>. <c>x-query-device</c> shows a digest of the memory, so two sides of
/// a migration can be compared. The device is its data: the framing, dirty tracking, pending
/// size and rate limit are the base class's.
/// </summary>
public sealed class LiveScratchDevice : ChunkedLiveState, ISaveStateDevice, IDeviceIntrospection, IDisposable
{
    /// <summary>The section name (the idstr is <c>ID/x-live-scratch</c>).</summary>
    public const string SectionName = "x-live-scratch";

    /// <summary>The bytes of one chunk.</summary>
    public const int ScratchChunkSize = 4096;

    private const int WritesPerBatch = 8;
    private static readonly TimeSpan BatchPause = TimeSpan.FromMilliseconds(4);

    private readonly byte[] _memory;
    private readonly VmBoundWorker? _writer;
    private readonly Random _writerRandom;
    private long _writes;

    /// <summary>Builds the device; with a <paramref name="vm"/> its writer runs while the VM runs.</summary>
    public LiveScratchDevice(
        [DeviceProperty("id", Description = "the device's id")] string id,
        DeviceContext? context = null,
        VirtualMachine? vm = null,
        [DeviceProperty("size-kib", Description = "KiB of scratch memory, a multiple of 4 in 4..1048576")] ulong sizeKib = 1024,
        [DeviceProperty("seed", Description = "derives the initial contents (0 = all zero)")] ulong seed = 0)
        : base(ChunksFor(sizeKib, context), ScratchChunkSize)
    {
        Id = id;
        _memory = new byte[(long)ChunkCount * ScratchChunkSize];
        int hash = unchecked((int)seed ^ (int)(seed >> 32));
        if (seed != 0)
        {
            new Random(hash).NextBytes(_memory);
        }

        _writerRandom = new Random(hash ^ 0x5a5a5a5a);
        if (vm is not null)
        {
            _writer = new VmBoundWorker(vm, $"{id} scratch writer", WriteBatch);
        }
    }

    /// <summary>The device id.</summary>
    public string Id { get; }

    /// <summary>How many writes the background writer did.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    /// <inheritdoc />
    protected override string StateName => $"{Id}/{SectionName}";

    /// <summary>A SHA-256 of the whole memory, in hex (stable only while the writer is parked).</summary>
    public string Digest() => Convert.ToHexStringLower(SHA256.HashData(_memory));

    /// <summary>Writes <paramref name="value"/> at <paramref name="offset"/> and marks its chunk dirty, as the writer does (for tests).</summary>
    public void Poke(int offset, byte value)
    {
        _memory[offset] = value;
        MarkDirty(offset / ScratchChunkSize);
    }

    /// <inheritdoc />
    public void Register(SaveStateRegistry registry) =>
        registry.RegisterLive(StateName, 0, FormatVersion, this);

    /// <inheritdoc />
    public JsonObject Describe() => new()
    {
        ["digest"] = Digest(),
        ["chunks"] = ChunkCount,
        ["chunk_size"] = ChunkSize,
        ["dirty"] = DirtyChunkCount,
        ["writes"] = Writes,
    };

    /// <inheritdoc />
    protected override void ReadChunk(int index, Span<byte> destination) =>
        _memory.AsSpan(index * ScratchChunkSize, ScratchChunkSize).CopyTo(destination);

    /// <inheritdoc />
    protected override void WriteChunk(int index, ReadOnlySpan<byte> source) =>
        source.CopyTo(_memory.AsSpan(index * ScratchChunkSize, ScratchChunkSize));

    private static int ChunksFor(ulong sizeKib, DeviceContext? context)
    {
        if (sizeKib is < 4 or > 1 << 20 || sizeKib % 4 != 0)
        {
            string message = $"size-kib must be a multiple of 4 in 4..{1 << 20}";
            throw context is null ? new ArgumentOutOfRangeException(nameof(sizeKib), message) : context.Error(message);
        }

        return (int)(sizeKib / 4);
    }

    /// <summary>A few writes to random chunks, then a short pause; on the writer thread while the VM runs.</summary>
    private void WriteBatch()
    {
        // Parked while the VM is stopped, so nothing changes during completion or a load.
        for (int i = 0; i < WritesPerBatch; i++)
        {
            int chunk = _writerRandom.Next(ChunkCount);
            int offset = chunk * ScratchChunkSize + _writerRandom.Next(ScratchChunkSize / 8) * 8;
            BitConverter.TryWriteBytes(_memory.AsSpan(offset, 8), Interlocked.Increment(ref _writes));
            MarkDirty(chunk);
        }

        Thread.Sleep(BatchPause);
    }

    /// <inheritdoc />
    public void Dispose() => _writer?.Dispose();
}
