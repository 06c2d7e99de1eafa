using System.Numerics;

namespace MiniVmm.Vfio;

/// <summary>
/// The device's DMA dirty log between DMA_LOGGING_START and DMA_LOGGING_STOP: one bit per tracked
/// page of each logged range, set by device DMA writes and read-and-cleared by reports.
/// Not thread-safe: the owning device serialises access.
/// </summary>
internal sealed class VfioDmaDirtyLog
{
    private readonly VfioDmaRange[] _ranges;
    private readonly ulong[][] _bitmaps;

    /// <summary>Creates an all-clean log; the ranges must already be validated (aligned, disjoint).</summary>
    public VfioDmaDirtyLog(IEnumerable<VfioDmaRange> ranges, ulong pageSize)
    {
        PageSize = pageSize;
        _ranges = ranges.OrderBy(r => r.Iova).ToArray();
        _bitmaps = _ranges.Select(r => new ulong[checked((int)((r.Length / pageSize + 63) / 64))]).ToArray();
    }

    /// <summary>The tracking granularity in bytes.</summary>
    public ulong PageSize { get; }

    /// <summary>Marks the tracked pages that [<paramref name="iova"/>, +<paramref name="length"/>) touches; outside the ranges nothing is logged.</summary>
    public void MarkDirty(ulong iova, ulong length)
    {
        if (length == 0)
        {
            return;
        }
        ulong last = iova + (length - 1);
        for (int i = 0; i < _ranges.Length; i++)
        {
            VfioDmaRange range = _ranges[i];
            ulong rangeLast = range.Iova + (range.Length - 1);
            if (last < range.Iova || iova > rangeLast)
            {
                continue;
            }
            ulong first = (Math.Max(iova, range.Iova) - range.Iova) / PageSize;
            ulong end = (Math.Min(last, rangeLast) - range.Iova) / PageSize;
            for (ulong page = first; page <= end; page++)
            {
                _bitmaps[i][page / 64] |= 1UL << (int)(page % 64);
            }
        }
    }

    /// <summary>
    /// The dirty bitmap of [<paramref name="iova"/>, +<paramref name="length"/>) at
    /// <paramref name="reportPageSize"/> granularity (bit n of word n/64 covers the n-th report page),
    /// clearing the tracked pages it reports.
    /// </summary>
    public ulong[] ReadAndClear(ulong iova, ulong length, ulong reportPageSize)
    {
        ulong bits = (length + reportPageSize - 1) / reportPageSize;
        var report = new ulong[checked((int)((bits + 63) / 64))];
        if (length == 0)
        {
            return report;
        }
        ulong last = iova + (length - 1);
        for (int i = 0; i < _ranges.Length; i++)
        {
            VfioDmaRange range = _ranges[i];
            ulong rangeLast = range.Iova + (range.Length - 1);
            if (last < range.Iova || iova > rangeLast)
            {
                continue;
            }
            ulong[] bitmap = _bitmaps[i];
            ulong firstPage = (Math.Max(iova, range.Iova) - range.Iova) / PageSize;
            ulong lastPage = (Math.Min(last, rangeLast) - range.Iova) / PageSize;
            for (ulong word = firstPage / 64; word <= lastPage / 64; word++)
            {
                ulong pending = bitmap[word];
                while (pending != 0)
                {
                    int bit = BitOperations.TrailingZeroCount(pending);
                    pending &= pending - 1;
                    ulong page = word * 64 + (ulong)bit;
                    if (page < firstPage || page > lastPage)
                    {
                        continue;
                    }
                    bitmap[word] &= ~(1UL << bit);
                    ulong pageStart = range.Iova + page * PageSize;
                    ulong pageLast = pageStart + (PageSize - 1);
                    ulong from = (Math.Max(pageStart, iova) - iova) / reportPageSize;
                    ulong to = (Math.Min(pageLast, last) - iova) / reportPageSize;
                    for (ulong n = from; n <= to; n++)
                    {
                        report[n / 64] |= 1UL << (int)(n % 64);
                    }
                }
            }
        }
        return report;
    }
}
