using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// A live savevm handler for a device whose migratable state is <see cref="ChunkCount"/>
/// numbered chunks of <see cref="ChunkSize"/> bytes, any of which may change while the VM runs.
/// The device supplies its geometry (constructor), <see cref="ReadChunk"/> (source),
/// <see cref="WriteChunk"/> (destination) and calls <see cref="MarkDirty"/> after it changes a
/// chunk; this class does the framing, the dirty tracking, the pending size and the rate limit.
/// </summary>
/// <remarks>
/// <para>Every section body (START, PART, END) has the same shape, all integers big-endian:</para>
/// <code>
/// be32 chunk count | be32 chunk size          (the geometry; the destination refuses another)
/// { be32 index | chunk-size bytes }*          (chunk records; none in START)
/// be32 0xFFFFFFFF                             (end of body)
/// </code>
/// <para>START (<see cref="SaveSetup"/>) carries the geometry only and marks every chunk dirty,
/// so the first rounds send everything. Each PART (<see cref="SaveLiveIterate"/>) sends dirty
/// chunks from where the last one stopped, in index order, until none is left or the stream is
/// rate limited (<see cref="MigrationStreamWriter.IsRateLimited"/>). END
/// (<see cref="SaveLiveCompletePrecopy"/>, VM stopped) sends every chunk still dirty. A chunk's
/// dirty bit is cleared before it is read, so a write that races the read marks it again; a
/// chunk whose record fails to be written is marked again, so dirty state is never lost.</para>
/// <para>The load side (<see cref="LoadState"/>) checks the geometry, each index and that the
/// whole record is there before <see cref="WriteChunk"/> sees it; every error is a
/// <see cref="MigrationStreamException"/> with the offset it refers to.</para>
/// <para>Lock rules: nothing here takes the big lock. <see cref="MarkDirty"/> may be called from
/// any thread at any time; <see cref="ReadChunk"/> runs on the migration thread while the VM may
/// be running (a torn read is harmless: the racing write marks the chunk dirty again), and with
/// the VM stopped at completion; <see cref="WriteChunk"/> runs under the big lock on the
/// destination.</para>
/// </remarks>
public abstract class ChunkedLiveState : ISaveVmHandlers
{
    /// <summary>The marker that ends every body (never a valid index).</summary>
    public const uint EndOfBody = 0xFFFF_FFFF;

    /// <summary>The largest chunk this class moves (16 MiB).</summary>
    public const int MaxChunkSize = 16 << 20;

    /// <summary>The section version this class writes and reads.</summary>
    public const int FormatVersion = 1;

    private readonly long[] _dirty;
    private long _dirtyCount;
    private int _cursor;

    /// <summary>Creates the state of <paramref name="chunkCount"/> chunks of <paramref name="chunkSize"/> bytes, none dirty.</summary>
    protected ChunkedLiveState(int chunkCount, int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkCount);
        ArgumentOutOfRangeException.ThrowIfEqual((uint)chunkCount, EndOfBody);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(chunkSize, MaxChunkSize);
        ChunkCount = chunkCount;
        ChunkSize = chunkSize;
        _dirty = new long[(chunkCount + 63) / 64];
    }

    /// <summary>How many chunks the state has.</summary>
    public int ChunkCount { get; }

    /// <summary>The bytes of one chunk.</summary>
    public int ChunkSize { get; }

    /// <summary>How many chunks are dirty (still to send during a migration). Any thread.</summary>
    public long DirtyChunkCount => Interlocked.Read(ref _dirtyCount);

    /// <summary>The name used in error messages (the section idstr, by default the class name).</summary>
    protected virtual string StateName => GetType().Name;

    /// <inheritdoc />
    public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live;

    /// <inheritdoc />
    public virtual SectionKind Kind => SectionKind.Other;

    /// <summary>Copies chunk <paramref name="index"/> into <paramref name="destination"/> (<see cref="ChunkSize"/> bytes). Source, migration thread.</summary>
    protected abstract void ReadChunk(int index, Span<byte> destination);

    /// <summary>Replaces chunk <paramref name="index"/> with <paramref name="source"/> (<see cref="ChunkSize"/> bytes, already validated). Destination, big lock held.</summary>
    protected abstract void WriteChunk(int index, ReadOnlySpan<byte> source);

    /// <summary>Records that chunk <paramref name="index"/> changed (call it after the change). Any thread, lock-free.</summary>
    public void MarkDirty(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, ChunkCount);
        long bit = 1L << (index & 63);
        if ((Interlocked.Or(ref _dirty[index >> 6], bit) & bit) == 0)
        {
            Interlocked.Increment(ref _dirtyCount);
        }
    }

    /// <summary>Marks every chunk dirty.</summary>
    public void MarkAllDirty()
    {
        for (int i = 0; i < ChunkCount; i++)
        {
            MarkDirty(i);
        }
    }

    /// <summary>Clears chunk <paramref name="index"/>'s dirty bit; true when it was set.</summary>
    private bool TakeDirty(int index)
    {
        long bit = 1L << (index & 63);
        if ((Interlocked.And(ref _dirty[index >> 6], ~bit) & bit) == 0)
        {
            return false;
        }

        Interlocked.Decrement(ref _dirtyCount);
        return true;
    }

    /// <summary>The first dirty chunk at or after <paramref name="from"/>, wrapping once; −1 when none is.</summary>
    private int NextDirty(int from)
    {
        for (int n = 0; n < _dirty.Length + 1; n++)
        {
            int word = ((from >> 6) + n) % _dirty.Length;
            long bits = Volatile.Read(ref _dirty[word]);
            if (n == 0)
            {
                bits &= -1L << (from & 63);
            }

            if (bits != 0)
            {
                return (word << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits);
            }
        }

        return -1;
    }

    /// <summary>START: the geometry; every chunk becomes dirty. Migration thread, big lock not held.</summary>
    public void SaveSetup(MigrationStreamWriter stream)
    {
        MarkAllDirty();
        _cursor = 0;
        PutGeometry(stream);
        stream.PutBe32(EndOfBody);
        stream.Flush();
    }

    /// <summary>PART: dirty chunks until none is left or the stream is rate limited. Migration thread, big lock not held.</summary>
    public IterationOutcome SaveLiveIterate(MigrationStreamWriter stream)
    {
        PutGeometry(stream);
        byte[] buffer = new byte[ChunkSize];
        bool done = false;
        while (!stream.IsRateLimited)
        {
            if (!SendNext(stream, buffer))
            {
                done = true;
                break;
            }
        }

        stream.PutBe32(EndOfBody);
        stream.Flush();
        return done ? IterationOutcome.Finished : IterationOutcome.MoreData;
    }

    /// <summary>END: every chunk still dirty. Big lock held, VM stopped.</summary>
    public void SaveLiveCompletePrecopy(MigrationStreamWriter stream)
    {
        PutGeometry(stream);
        byte[] buffer = new byte[ChunkSize];
        while (SendNext(stream, buffer))
        {
        }

        stream.PutBe32(EndOfBody);
        stream.Flush();
    }

    /// <summary>Dirty chunks × chunk size. Any thread.</summary>
    public PendingSize StatePendingEstimate() => new((ulong)DirtyChunkCount * (ulong)ChunkSize, 0);

    /// <summary>As the estimate: the dirty bits are exact at all times.</summary>
    public PendingSize StatePendingExact() => StatePendingEstimate();

    private void PutGeometry(MigrationStreamWriter stream)
    {
        stream.PutBe32((uint)ChunkCount);
        stream.PutBe32((uint)ChunkSize);
    }

    private bool SendNext(MigrationStreamWriter stream, byte[] buffer)
    {
        while (true)
        {
            int index = NextDirty(_cursor);
            if (index < 0)
            {
                return false;
            }

            _cursor = index + 1 == ChunkCount ? 0 : index + 1;
            if (!TakeDirty(index))
            {
                continue;
            }

            try
            {
                ReadChunk(index, buffer);
                stream.PutBe32((uint)index);
                stream.PutBuffer(buffer);
            }
            catch
            {
                MarkDirty(index);
                throw;
            }

            return true;
        }
    }

    /// <summary>Reads one body (START, PART or END), validating before writing any chunk. Big lock held.</summary>
    public void LoadState(MigrationStreamReader stream, int versionId)
    {
        if (versionId is < 1 or > FormatVersion)
        {
            throw new MigrationStreamException($"{StateName}: section version {versionId} is not supported (1..{FormatVersion})", stream.Offset);
        }

        long at = stream.Offset;
        uint count = stream.GetBe32();
        uint size = stream.GetBe32();
        if (count != (uint)ChunkCount || size != (uint)ChunkSize)
        {
            throw new MigrationStreamException(
                $"{StateName}: the source has {count} chunks of {size} bytes, this device {ChunkCount} chunks of {ChunkSize} bytes", at);
        }

        byte[] buffer = new byte[ChunkSize];
        while (true)
        {
            at = stream.Offset;
            uint index = stream.GetBe32();
            if (index == EndOfBody)
            {
                return;
            }

            if (index >= (uint)ChunkCount)
            {
                throw new MigrationStreamException($"{StateName}: chunk index {index} is out of range (0..{ChunkCount - 1})", at);
            }

            stream.ReadExactly(buffer, $"{StateName} chunk {index}");
            WriteChunk((int)index, buffer);
        }
    }
}
