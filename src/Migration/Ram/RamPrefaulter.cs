namespace MiniVmm.Migration.Ram;

/// <summary>
/// Populates RAM chunks ahead of the incoming loader on a second thread, so that allocating
/// fresh memory (the dominant cost of a full-RAM load: QEMU needs <c>-mem-prealloc</c> for the
/// same effect) overlaps with receiving. It only ever runs a bounded distance ahead of the last
/// data page loaded, and only once the stream has proved dense, so a sparse guest commits
/// almost nothing extra. Each chunk is claimed once (<see cref="RamBlock.Populated"/>), by whichever side gets to it first, the background prefault of a waiting destination included.
/// </summary>
internal sealed class RamPrefaulter : IDisposable
{
    /// <summary>How far ahead of the loader the worker may populate.</summary>
    public const long Distance = 32 << 20;

    /// <summary>Consecutive chunks with data before the stream counts as dense.</summary>
    public const int DenseAfter = 8;

    private readonly RamBlock _block;
    private readonly Thread _worker;
    private readonly SemaphoreSlim _wake = new(0);
    private long _target = -1;
    private long _cursor;
    private long _lastChunk = -2;
    private int _consecutive;
    private volatile bool _stopping;

    public RamPrefaulter(RamBlock block)
    {
        _block = block;
        _worker = new Thread(Run) { Name = $"ram prefault {block.IdStr}", IsBackground = true };
        _worker.Start();
    }

    /// <summary>
    /// Called by the loader before a data page lands in <paramref name="chunk"/>: populates the
    /// chunk unless the worker has, and lets the worker run ahead once the stream is dense.
    /// </summary>
    public bool EnsurePopulated(long chunk)
    {
        if (chunk == _lastChunk)
        {
            return true;
        }

        _consecutive = chunk == _lastChunk + 1 ? _consecutive + 1 : 0;
        _lastChunk = chunk;
        if (_consecutive >= DenseAfter)
        {
            long target = Math.Min(_block.Populated.Count - 1, chunk + (Distance / RamBlock.PopulateChunk));
            // Wake the worker only when there is something ahead to allocate: on a destination
            // whose RAM the background prefault already allocated, waking it for every chunk only
            // cost context switches.
            if (target > Volatile.Read(ref _target) && !_block.Populated.IsClaimed(target))
            {
                Volatile.Write(ref _target, target);
                Volatile.Write(ref _cursor, Math.Max(Volatile.Read(ref _cursor), chunk + 1));
                _wake.Release();
            }
        }

        return _block.PopulateChunkOnce(chunk);
    }

    private void Run()
    {
        while (true)
        {
            _wake.Wait();
            if (_stopping)
            {
                return;
            }

            long chunk = Volatile.Read(ref _cursor);
            while (!_stopping && chunk <= Volatile.Read(ref _target))
            {
                if (!_block.PopulateChunkOnce(chunk))
                {
                    return; // the kernel does not know MADV_POPULATE_WRITE: nothing to gain.
                }

                chunk++;
                Volatile.Write(ref _cursor, Math.Max(Volatile.Read(ref _cursor), chunk));
            }
        }
    }

    /// <summary>Stops the worker and waits for it.</summary>
    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _wake.Release();
        _worker.Join();
        _wake.Dispose();
    }
}
