using System.Numerics;

namespace MiniVmm.Migration.Ram;

/// <summary>
/// A plain per-block page bitmap owned by the RAM handler (QEMU's <c>RAMBlock.bmap</c>): set
/// bits are pages still to be sent. Not thread-safe; the handler guards it with its bitmap lock.
/// </summary>
internal sealed class MigrationBitmap
{
    public MigrationBitmap(long pageCount)
    {
        PageCount = pageCount;
        Words = new ulong[(pageCount + 63) / 64];
    }

    public long PageCount { get; }

    public ulong[] Words { get; }

    /// <summary>Sets the bit of every page; returns the page count.</summary>
    public long SetAll()
    {
        Array.Fill(Words, ulong.MaxValue);
        if ((PageCount & 63) != 0)
        {
            Words[^1] = (1UL << (int)(PageCount & 63)) - 1;
        }

        return PageCount;
    }

    public void Set(long page) => Words[page >> 6] |= 1UL << (int)(page & 63);

    public void Clear(long page) => Words[page >> 6] &= ~(1UL << (int)(page & 63));

    /// <summary>The first set page at or after <paramref name="from"/>, or -1.</summary>
    public long FindNext(long from)
    {
        if (from >= PageCount)
        {
            return -1;
        }

        long index = from >> 6;
        ulong word = Words[index] & (ulong.MaxValue << (int)(from & 63));
        while (true)
        {
            if (word != 0)
            {
                return (index << 6) + BitOperations.TrailingZeroCount(word);
            }

            if (++index >= Words.Length)
            {
                return -1;
            }

            word = Words[index];
        }
    }

    /// <summary>Moves every set bit of this bitmap into <paramref name="target"/>; returns how many were new there.</summary>
    public long MoveInto(MigrationBitmap target)
    {
        long fresh = 0;
        for (int i = 0; i < Words.Length; i++)
        {
            ulong bits = Words[i];
            if (bits != 0)
            {
                fresh += BitOperations.PopCount(bits & ~target.Words[i]);
                target.Words[i] |= bits;
                Words[i] = 0;
            }
        }

        return fresh;
    }

    public long Count()
    {
        long count = 0;
        foreach (ulong word in Words)
        {
            count += BitOperations.PopCount(word);
        }

        return count;
    }

    public void ClearAll() => Array.Clear(Words);
}
