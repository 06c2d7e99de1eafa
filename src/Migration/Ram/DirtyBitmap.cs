using System.Numerics;
using System.Runtime.CompilerServices;
using MiniVmm.Native;

namespace MiniVmm.Migration.Ram;

/// <summary>
/// The dirty log of one RAM block without KVM: one bit per 4 KiB page in 64-bit words that live
/// in a memfd mapped shared, so a guest harness in another process can map <see cref="Fd"/> and
/// mark its own writes. Bit <c>p % 64</c> of word <c>p / 64</c> (little-endian u64) is page
/// <c>p</c>. Writers set bits with an atomic OR (<c>lock or</c>) after writing the page;
/// <see cref="HarvestInto"/> takes each word with an atomic exchange to zero, so a bit set
/// concurrently is either harvested now or stays for the next harvest, never lost.
/// </summary>
public sealed unsafe class DirtyBitmap : IDisposable
{
    private readonly FileDescriptorHandle _fd;
    private readonly MemoryMapping _mapping;
    private readonly ulong* _words;

    /// <summary>Creates an all-clean bitmap for <paramref name="pageCount"/> pages.</summary>
    /// <param name="name">A name for the memfd (debugging only).</param>
    /// <param name="pageCount">Pages covered (at least 1).</param>
    public DirtyBitmap(string name, long pageCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageCount, 1);
        PageCount = pageCount;
        WordCount = (pageCount + 63) / 64;
        long bytes = (WordCount * sizeof(ulong) + SystemPageBytes - 1) / SystemPageBytes * SystemPageBytes;
        _fd = Memfd.Create($"dirty-log:{name}", MemfdFlags.CloseOnExec | MemfdFlags.AllowSealing);
        try
        {
            _fd.Truncate(bytes);
            // A harness maps the file too: sealed against shrinking, it can never make this mapping fault.
            _fd.AddSeals(FileSeals.Shrink);
            _mapping = MemoryMapping.Map(_fd, 0, bytes, MemoryProtection.ReadWrite, MappingFlags.Shared);
        }
        catch
        {
            _fd.Dispose();
            throw;
        }

        _words = (ulong*)_mapping.Pointer;
        MappedBytes = bytes;
    }

    private const long SystemPageBytes = 4096;

    private ulong LastWordMask => (PageCount & 63) == 0 ? ulong.MaxValue : (1UL << (int)(PageCount & 63)) - 1;

    /// <summary>Pages covered.</summary>
    public long PageCount { get; }

    /// <summary>64-bit words in use (the mapping may be longer, padded to whole pages with zeros).</summary>
    public long WordCount { get; }

    /// <summary>Size of the memfd and of a mapping of it.</summary>
    public long MappedBytes { get; }

    /// <summary>The memfd holding the words; map it shared to mark pages from another process.</summary>
    public FileDescriptorHandle Fd => _fd;

    /// <summary>Marks one page dirty (atomic).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Mark(long page)
    {
        CheckPage(page);
        Interlocked.Or(ref _words[page >> 6], 1UL << (int)(page & 63));
    }

    /// <summary>Marks <paramref name="count"/> pages from <paramref name="firstPage"/> dirty (one atomic OR per word).</summary>
    public void MarkRange(long firstPage, long count)
    {
        if (count <= 0)
        {
            return;
        }

        CheckPage(firstPage);
        CheckPage(firstPage + count - 1);
        long page = firstPage;
        long end = firstPage + count;
        while (page < end)
        {
            int bit = (int)(page & 63);
            int bits = (int)Math.Min(64 - bit, end - page);
            ulong mask = bits == 64 ? ulong.MaxValue : ((1UL << bits) - 1) << bit;
            Interlocked.Or(ref _words[page >> 6], mask);
            page += bits;
        }
    }

    /// <summary>Whether a page is marked (a plain read; it may change at once).</summary>
    public bool IsDirty(long page)
    {
        CheckPage(page);
        return (Volatile.Read(ref _words[page >> 6]) & (1UL << (int)(page & 63))) != 0;
    }

    /// <summary>How many pages are marked now.</summary>
    public long CountDirty()
    {
        long count = 0;
        for (long i = 0; i < WordCount; i++)
        {
            count += BitOperations.PopCount(Volatile.Read(ref _words[i]));
        }

        return count;
    }

    /// <summary>
    /// Takes every marked bit (each word exchanged with zero) and ORs it into
    /// <paramref name="target"/>, one word per 64 pages. Returns how many bits were not set in
    /// <paramref name="target"/> before. Bits beyond <see cref="PageCount"/> are never set.
    /// </summary>
    public long HarvestInto(Span<ulong> target)
    {
        if (target.Length < WordCount)
        {
            throw new ArgumentException(
                $"the target holds {target.Length} words; the dirty log of {PageCount} pages needs {WordCount}", nameof(target));
        }

        long fresh = 0;
        ulong* words = _words;
        for (long i = 0; i < WordCount; i++)
        {
            if (Volatile.Read(ref words[i]) == 0)
            {
                continue;
            }

            ulong taken = Interlocked.Exchange(ref words[i], 0);
            if (i == WordCount - 1)
            {
                // An external writer may have set bits past the last page: they mean nothing.
                taken &= LastWordMask;
            }

            fresh += BitOperations.PopCount(taken & ~target[(int)i]);
            target[(int)i] |= taken;
        }

        return fresh;
    }

    /// <summary>Marks again every page whose bit is set in <paramref name="bits"/> (pages that were harvested but not delivered).</summary>
    public void Restore(ReadOnlySpan<ulong> bits)
    {
        long count = Math.Min(bits.Length, WordCount);
        for (int i = 0; i < count; i++)
        {
            ulong value = bits[i];
            if (i == WordCount - 1)
            {
                value &= LastWordMask;
            }

            if (value != 0)
            {
                Interlocked.Or(ref _words[i], value);
            }
        }
    }

    /// <summary>Clears every bit.</summary>
    public void Clear()
    {
        for (long i = 0; i < WordCount; i++)
        {
            Volatile.Write(ref _words[i], 0);
        }
    }

    /// <summary>Unmaps and closes the memfd (reverse of creation); later calls do nothing.</summary>
    public void Dispose()
    {
        _mapping.Dispose();
        _fd.Dispose();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckPage(long page)
    {
        if ((ulong)page >= (ulong)PageCount)
        {
            ThrowPageOutOfRange(page);
        }

        ObjectDisposedException.ThrowIf(_mapping.IsDisposed, this);
    }

    private void ThrowPageOutOfRange(long page) =>
        throw new ArgumentOutOfRangeException(nameof(page), $"page {page} is outside the dirty log of {PageCount} pages");
}
