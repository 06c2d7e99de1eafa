namespace MiniVmm.Migration.Ram;

/// <summary>
/// Which <see cref="RamBlock.PopulateChunk"/>-sized chunks of a block somebody has already
/// allocated (or is allocating): one bit each, claimed atomically, so that the loader, its
/// look-ahead worker, the background prefault of a waiting destination and preallocation never
/// populate the same chunk twice (populating it again is not free: it walks the page tables).
/// Any thread.
/// </summary>
public sealed class PopulatedChunks
{
    private readonly long[] _bits;

    internal PopulatedChunks(long chunks)
    {
        Count = chunks;
        _bits = new long[(chunks + 63) / 64];
    }

    /// <summary>How many chunks the block has.</summary>
    public long Count { get; }

    /// <summary>Whether <paramref name="chunk"/> is claimed.</summary>
    public bool IsClaimed(long chunk) => (Volatile.Read(ref _bits[chunk >> 6]) & (1L << (int)(chunk & 63))) != 0;

    /// <summary>Claims <paramref name="chunk"/>; true when this call claimed it (the caller populates it), false when someone had.</summary>
    public bool TryClaim(long chunk)
    {
        long bit = 1L << (int)(chunk & 63);
        return (Interlocked.Or(ref _bits[chunk >> 6], bit) & bit) == 0;
    }

    /// <summary>Claims every chunk (the whole block was populated in one go).</summary>
    internal void ClaimAll()
    {
        for (int i = 0; i < _bits.Length; i++)
        {
            Volatile.Write(ref _bits[i], -1L);
        }
    }
}
