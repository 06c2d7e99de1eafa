namespace MiniVmm.Migration.Ram;

/// <summary>
/// Finds pages of a RAM block whose memfd has never been written (holes) without touching them:
/// reading such a page through the mapping would allocate it, so zero-page detection asks the
/// file (lseek SEEK_DATA / SEEK_HOLE) first and remembers the extent it got. A page written
/// since stops being a hole, so a remembered hole must be forgotten (<see cref="Forget"/>)
/// whenever pages may have been written, e.g. at the start of every send pass and after the
/// loader writes a page; a remembered data extent stays true (nothing punches holes into guest
/// RAM). A chunk in <see cref="RamBlock.Populated"/> is data without asking the file: on a
/// populated shmem file each SEEK_HOLE walks the page cache up to the next hole, which made a
/// prefaulted destination's zero pages cost a walk of all its RAM each. One thread.
/// </summary>
internal sealed class RamBackingExtents
{
    private readonly RamBlock _block;
    private long _start;
    private long _end;
    private bool _hole;

    public RamBackingExtents(RamBlock block) => _block = block;

    /// <summary>Drops the remembered extent if it is a hole (pages may have been written into it since).</summary>
    public void Forget()
    {
        if (_hole)
        {
            _start = 0;
            _end = 0;
        }
    }

    /// <summary>Whether the page at byte <paramref name="offset"/> lies in a hole of the memfd (reads as zeros, never written).</summary>
    public bool IsHole(long offset)
    {
        if (_block.Populated.IsClaimed(offset / RamBlock.PopulateChunk))
        {
            return false;
        }

        if (offset < _start || offset >= _end)
        {
            Query(offset);
        }

        return _hole;
    }

    private void Query(long offset)
    {
        long data = _block.MemoryFd.SeekData(offset);
        _start = offset;
        if (data < 0 || data >= _block.UsedLength)
        {
            _hole = true;
            _end = _block.UsedLength;
        }
        else if (data > offset)
        {
            _hole = true;
            _end = data & ~(long)(RamBlock.PageSize - 1);
            if (_end <= offset)
            {
                _hole = false;
                _end = offset + RamBlock.PageSize;
            }
        }
        else
        {
            long hole = _block.MemoryFd.SeekHole(offset);
            _hole = false;
            _end = hole < 0 ? _block.UsedLength : Math.Max(hole, offset + RamBlock.PageSize);
        }
    }
}
