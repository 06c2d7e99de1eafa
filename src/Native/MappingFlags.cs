namespace MiniVmm.Native;

/// <summary>Flags of mmap(2) (Linux x86_64 values).</summary>
[Flags]
public enum MappingFlags
{
    /// <summary>No flag (mmap needs one of <see cref="Shared"/> or <see cref="Private"/>).</summary>
    None = 0,
    /// <summary>MAP_SHARED: writes reach the file and other mappings of it.</summary>
    Shared = 0x1,
    /// <summary>MAP_PRIVATE: copy-on-write mapping.</summary>
    Private = 0x2,
    /// <summary>MAP_FIXED: place the mapping exactly at the hint address.</summary>
    Fixed = 0x10,
    /// <summary>MAP_ANONYMOUS: not backed by a file; set implicitly when no file is given.</summary>
    Anonymous = 0x20,
    /// <summary>MAP_NORESERVE: do not reserve swap space.</summary>
    NoReserve = 0x4000,
    /// <summary>MAP_POPULATE: prefault the page tables.</summary>
    Populate = 0x8000,
    /// <summary>MAP_HUGETLB: allocate with huge pages.</summary>
    HugeTlb = 0x40000,
}
