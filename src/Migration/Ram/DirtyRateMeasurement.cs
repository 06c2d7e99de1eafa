namespace MiniVmm.Migration.Ram;

/// <summary>
/// One running dirty-rate window (see <see cref="DirtyRateMeter"/>). Holds dirty logging on
/// until finished or disposed; disposing without finishing puts the marks back as well.
/// </summary>
public sealed class DirtyRateMeasurement : IDisposable
{
    private readonly GuestMemory _memory;
    private readonly TimeProvider _time;
    private readonly long _start;
    private ulong[][]? _setAside;

    internal DirtyRateMeasurement(GuestMemory memory, TimeProvider time)
    {
        _memory = memory;
        _time = time;
        _memory.StartDirtyLogging();
        _setAside = new ulong[memory.Blocks.Count][];
        for (int i = 0; i < _setAside.Length; i++)
        {
            DirtyBitmap bitmap = memory.Blocks[i].DirtyBitmap;
            _setAside[i] = new ulong[bitmap.WordCount];
            bitmap.HarvestInto(_setAside[i]);
        }

        _start = time.GetTimestamp();
    }

    /// <summary>Ends the window: counts the pages marked during it and restores every mark.</summary>
    public DirtyRate Finish()
    {
        ulong[][] setAside = _setAside ?? throw new InvalidOperationException("this dirty-rate measurement has already finished");
        TimeSpan window = _time.GetElapsedTime(_start);
        long dirtied = 0;
        for (int i = 0; i < setAside.Length; i++)
        {
            DirtyBitmap bitmap = _memory.Blocks[i].DirtyBitmap;
            ulong[] during = new ulong[bitmap.WordCount];
            bitmap.HarvestInto(during);
            foreach (ulong word in during)
            {
                dirtied += System.Numerics.BitOperations.PopCount(word);
            }

            bitmap.Restore(during);
        }

        Release();
        return new DirtyRate(dirtied, window);
    }

    /// <summary>Puts the marks set aside back and stops this window's dirty logging; later calls do nothing.</summary>
    public void Dispose() => Release();

    private void Release()
    {
        ulong[][]? setAside = Interlocked.Exchange(ref _setAside, null);
        if (setAside is null)
        {
            return;
        }

        for (int i = 0; i < setAside.Length; i++)
        {
            _memory.Blocks[i].DirtyBitmap.Restore(setAside[i]);
        }

        _memory.StopDirtyLogging();
    }
}
