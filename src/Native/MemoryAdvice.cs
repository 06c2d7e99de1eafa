namespace MiniVmm.Native;

/// <summary>Advice values of madvise(2) (Linux values).</summary>
public enum MemoryAdvice
{
    /// <summary>MADV_NORMAL.</summary>
    Normal = 0,
    /// <summary>MADV_RANDOM.</summary>
    Random = 1,
    /// <summary>MADV_SEQUENTIAL.</summary>
    Sequential = 2,
    /// <summary>MADV_WILLNEED.</summary>
    WillNeed = 3,
    /// <summary>MADV_DONTNEED: drop the pages; private anonymous memory reads back as zero.</summary>
    DontNeed = 4,
    /// <summary>MADV_FREE: the pages may be freed lazily.</summary>
    Free = 8,
    /// <summary>MADV_REMOVE: free the range and its backing store (shared memory).</summary>
    Remove = 9,
    /// <summary>MADV_DONTFORK.</summary>
    DontFork = 10,
    /// <summary>MADV_DOFORK.</summary>
    DoFork = 11,
    /// <summary>MADV_MERGEABLE: candidate for KSM.</summary>
    Mergeable = 12,
    /// <summary>MADV_UNMERGEABLE.</summary>
    Unmergeable = 13,
    /// <summary>MADV_HUGEPAGE: enable transparent huge pages.</summary>
    HugePage = 14,
    /// <summary>MADV_NOHUGEPAGE.</summary>
    NoHugePage = 15,
    /// <summary>MADV_DONTDUMP: exclude from core dumps.</summary>
    DontDump = 16,
    /// <summary>MADV_DODUMP.</summary>
    DoDump = 17,
    /// <summary>MADV_POPULATE_READ: prefault readable (Linux 5.14+).</summary>
    PopulateRead = 22,
    /// <summary>MADV_POPULATE_WRITE: prefault writable (Linux 5.14+).</summary>
    PopulateWrite = 23,
}
