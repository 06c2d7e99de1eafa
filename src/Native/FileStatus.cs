using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>The x86_64 <c>struct stat</c> filled by fstat(2); only the fields read here are named.</summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
internal struct FileStatus
{
    /// <summary>st_mode: file type and permission bits.</summary>
    [FieldOffset(24)] public uint Mode;

    /// <summary>st_size: size in bytes.</summary>
    [FieldOffset(48)] public long Size;

    /// <summary>st_blksize: the preferred I/O size; on hugetlbfs, the huge page size.</summary>
    [FieldOffset(56)] public long BlockSize;
}
