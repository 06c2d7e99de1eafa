namespace MiniVmm.Migration.Ram;

/// <summary>
/// The guest's RAM: its blocks in QEMU's <c>ram_list</c> order, reads and writes by guest
/// physical address that mark written pages in the dirty log while dirty logging is on, and
/// the file helpers of QEMU's generic loader and <c>pmemsave</c>.
/// </summary>
public sealed class GuestMemory : IDisposable
{
    /// <summary>The block name of <c>-M none</c>'s RAM.</summary>
    public const string MachineNoneBlockName = "ram";

    private readonly RamBlock[] _blocks;
    private int _dirtyLogUsers;
    private System.Collections.Immutable.ImmutableArray<IDirtyLogSource> _dirtyLogSources = [];
    private bool _disposed;

    /// <summary>
    /// Creates the blocks of <paramref name="layout"/>, in that order (they must not overlap), and
    /// preallocates those whose backing asks for it, on one thread per CPU, before returning.
    /// </summary>
    /// <exception cref="RamBackingException">A block's memory cannot be provided or preallocated.</exception>
    public GuestMemory(IEnumerable<RamBlockLayout> layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var blocks = new List<RamBlock>();
        try
        {
            foreach (RamBlockLayout entry in layout)
            {
                foreach (RamBlock existing in blocks)
                {
                    if (existing.IdStr == entry.IdStr)
                    {
                        throw new ArgumentException($"RAM block '{entry.IdStr}' is listed twice", nameof(layout));
                    }

                    if (entry.GuestAddress < existing.GuestAddress + existing.UsedLength
                        && existing.GuestAddress < entry.GuestAddress + entry.Size)
                    {
                        throw new ArgumentException(
                            $"RAM block '{entry.IdStr}' at 0x{entry.GuestAddress:x}+0x{entry.Size:x} overlaps {existing}", nameof(layout));
                    }
                }

                blocks.Add(new RamBlock(entry.IdStr, entry.GuestAddress, entry.Size, entry.Backing));
            }

            foreach (RamBlock block in blocks)
            {
                if (block.Backing.Preallocate)
                {
                    RamPreallocation.Run(block, Environment.ProcessorCount);
                }
            }
        }
        catch
        {
            for (int i = blocks.Count - 1; i >= 0; i--)
            {
                blocks[i].Dispose();
            }

            throw;
        }

        if (blocks.Count == 0)
        {
            throw new ArgumentException("guest memory needs at least one RAM block", nameof(layout));
        }

        _blocks = [.. blocks];
        TotalBytes = blocks.Sum(b => b.UsedLength);
    }

    /// <summary>QEMU 7.2's <c>-M none -m SIZE</c>: one block named <c>ram</c> at guest address 0.</summary>
    public static GuestMemory ForMachineNone(long size) => new([new RamBlockLayout(MachineNoneBlockName, 0, size)]);

    /// <summary>
    /// <c>-M none</c> with its RAM from a memory backend (<c>-machine memory-backend=ID</c>): one
    /// block named after the backend at guest address 0, as QEMU 7.2 names it.
    /// </summary>
    public static GuestMemory ForMachineNone(string blockName, long size, RamBlockBacking backing) =>
        new([new RamBlockLayout(blockName, 0, size, backing)]);

    /// <summary>The blocks, in stream order.</summary>
    public IReadOnlyList<RamBlock> Blocks => _blocks;

    /// <summary>Sum of the blocks' used lengths.</summary>
    public long TotalBytes { get; }

    /// <summary>Total number of 4 KiB pages.</summary>
    public long TotalPages => TotalBytes >> RamBlock.PageShift;

    /// <summary>Whether writes through <see cref="Write(long, ReadOnlySpan{byte})"/> mark pages dirty (someone started dirty logging).</summary>
    public bool IsDirtyLogging => Volatile.Read(ref _dirtyLogUsers) > 0;

    /// <summary>The block named <paramref name="idStr"/>, or null.</summary>
    public RamBlock? FindBlock(string idStr)
    {
        foreach (RamBlock block in _blocks)
        {
            if (block.IdStr == idStr)
            {
                return block;
            }
        }

        return null;
    }

    /// <summary>The block named by the UTF-8 bytes <paramref name="idStr"/>, or null.</summary>
    public RamBlock? FindBlock(ReadOnlySpan<byte> idStr)
    {
        foreach (RamBlock block in _blocks)
        {
            if (idStr.SequenceEqual(block.IdStrBytes))
            {
                return block;
            }
        }

        return null;
    }

    /// <summary>
    /// Starts global dirty logging (QEMU's <c>memory_global_dirty_log_start</c>); users nest, and
    /// logging stays on until each has called <see cref="StopDirtyLogging"/>.
    /// </summary>
    public void StartDirtyLogging() => Interlocked.Increment(ref _dirtyLogUsers);

    /// <summary>
    /// Adds a source of dirty pages the bitmaps cannot see by themselves (device DMA); it is
    /// asked to report at every <see cref="SyncDirtyLogSources"/> until the result is disposed.
    /// </summary>
    public IDisposable AddDirtyLogSource(IDirtyLogSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        System.Collections.Immutable.ImmutableInterlocked.Update(ref _dirtyLogSources, list => list.Add(source));
        return new DirtyLogSourceRegistration(this, source);
    }

    /// <summary>
    /// Lets every dirty-log source mark what it saw (QEMU's <c>log_sync</c>); the RAM handler
    /// calls it right before harvesting the bitmaps. Big lock held.
    /// </summary>
    public void SyncDirtyLogSources()
    {
        foreach (IDirtyLogSource source in _dirtyLogSources)
        {
            source.SyncDirtyLog(this);
        }
    }

    /// <summary>Ends one user's dirty logging. Pages already marked stay marked.</summary>
    public void StopDirtyLogging()
    {
        if (Interlocked.Decrement(ref _dirtyLogUsers) < 0)
        {
            Interlocked.Increment(ref _dirtyLogUsers);
            throw new InvalidOperationException("dirty logging was stopped more often than it was started");
        }
    }

    /// <summary>
    /// Copies <paramref name="data"/> to guest physical address <paramref name="gpa"/> and, while
    /// dirty logging is on, marks every page it touched (after the data is in place).
    /// </summary>
    /// <exception cref="GuestMemoryRangeException">The range is not entirely RAM; nothing is written.</exception>
    public void Write(long gpa, ReadOnlySpan<byte> data) => Write(gpa, data, IsDirtyLogging);

    /// <summary>
    /// A device's DMA write: copies <paramref name="data"/> to <paramref name="gpa"/> without
    /// marking the CPU-side dirty bitmap (DMA bypasses it, as with real hardware); only the
    /// device's own DMA dirty log reports it (see <see cref="IDirtyLogSource"/>).
    /// </summary>
    /// <exception cref="GuestMemoryRangeException">The range is not entirely RAM; nothing is written.</exception>
    public void WriteFromDevice(long gpa, ReadOnlySpan<byte> data) => Write(gpa, data, log: false);

    private void Write(long gpa, ReadOnlySpan<byte> data, bool log)
    {
        CheckRange(gpa, data.Length, "write");
        while (!data.IsEmpty)
        {
            RamBlock block = BlockAt(gpa)!;
            long offset = gpa - block.GuestAddress;
            int chunk = (int)Math.Min(data.Length, block.UsedLength - offset);
            data[..chunk].CopyTo(block.GetSpan(offset, chunk));
            if (log)
            {
                long first = offset >> RamBlock.PageShift;
                long last = (offset + chunk - 1) >> RamBlock.PageShift;
                block.DirtyBitmap.MarkRange(first, last - first + 1);
            }

            data = data[chunk..];
            gpa += chunk;
        }
    }

    /// <summary>Copies guest memory at <paramref name="gpa"/> into <paramref name="destination"/>.</summary>
    /// <exception cref="GuestMemoryRangeException">The range is not entirely RAM.</exception>
    public void Read(long gpa, Span<byte> destination)
    {
        CheckRange(gpa, destination.Length, "read");
        while (!destination.IsEmpty)
        {
            RamBlock block = BlockAt(gpa)!;
            long offset = gpa - block.GuestAddress;
            int chunk = (int)Math.Min(destination.Length, block.UsedLength - offset);
            block.GetSpan(offset, chunk).CopyTo(destination);
            destination = destination[chunk..];
            gpa += chunk;
        }
    }

    /// <summary>
    /// Copies a whole file into guest RAM at <paramref name="gpa"/>, as QEMU's
    /// <c>-device loader,file=F,addr=A</c> does (through <see cref="Write(long, ReadOnlySpan{byte})"/>).
    /// </summary>
    /// <exception cref="GuestMemoryRangeException">The file does not fit in RAM at that address; nothing is written.</exception>
    public void LoadFile(string path, long gpa)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        long length = file.Length;
        if (!IsRam(gpa, length))
        {
            throw new GuestMemoryRangeException(
                $"loader file '{path}' ({length} bytes) does not fit in guest RAM at 0x{gpa:x}: " +
                $"0x{gpa:x}..0x{gpa + length:x} is not entirely RAM ({Describe()})", gpa, length);
        }

        byte[] buffer = new byte[(int)Math.Min(length, 1 << 20)];
        long done = 0;
        while (done < length)
        {
            int got = file.Read(buffer, 0, (int)Math.Min(buffer.Length, length - done));
            if (got == 0)
            {
                throw new IOException($"loader file '{path}' shrank while being read: {done} of {length} bytes");
            }

            Write(gpa + done, buffer.AsSpan(0, got));
            done += got;
        }
    }

    /// <summary>
    /// Writes <paramref name="size"/> bytes of guest memory from <paramref name="gpa"/> to a new
    /// file (QMP <c>pmemsave</c>).
    /// </summary>
    /// <exception cref="GuestMemoryRangeException">The range is not entirely RAM; no file is created.</exception>
    public void SaveToFile(long gpa, long size, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckRange(gpa, size, "pmemsave");
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1);
        const int Chunk = 64 << 20;
        while (size > 0)
        {
            RamBlock block = BlockAt(gpa)!;
            long offset = gpa - block.GuestAddress;
            int chunk = (int)Math.Min(Math.Min(size, Chunk), block.UsedLength - offset);
            file.Write(block.GetSpan(offset, chunk));
            gpa += chunk;
            size -= chunk;
        }
    }

    /// <summary>Whether [<paramref name="gpa"/>, +<paramref name="length"/>) is entirely guest RAM.</summary>
    public bool IsRam(long gpa, long length)
    {
        if (gpa < 0 || length < 0 || gpa > long.MaxValue - length)
        {
            return false;
        }

        long end = gpa + length;
        while (gpa < end)
        {
            RamBlock? block = BlockAt(gpa);
            if (block is null)
            {
                return false;
            }

            gpa = block.GuestAddress + block.UsedLength;
        }

        return true;
    }

    /// <summary>Disposes the blocks in reverse order of creation; later calls do nothing.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        for (int i = _blocks.Length - 1; i >= 0; i--)
        {
            _blocks[i].Dispose();
        }
    }

    private RamBlock? BlockAt(long gpa)
    {
        foreach (RamBlock block in _blocks)
        {
            if (block.Contains(gpa))
            {
                return block;
            }
        }

        return null;
    }

    private void CheckRange(long gpa, long length, string operation)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!IsRam(gpa, length))
        {
            throw new GuestMemoryRangeException(
                $"{operation}: guest physical range 0x{gpa:x}+0x{length:x} is not entirely RAM ({Describe()})", gpa, length);
        }
    }

    private string Describe() =>
        string.Join(", ", _blocks.Select(b => $"'{b.IdStr}' 0x{b.GuestAddress:x}..0x{b.GuestAddress + b.UsedLength:x}"));

    private sealed class DirtyLogSourceRegistration(GuestMemory memory, IDirtyLogSource source) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                System.Collections.Immutable.ImmutableInterlocked.Update(ref memory._dirtyLogSources, list => list.Remove(source));
            }
        }
    }
}
