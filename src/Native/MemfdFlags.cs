namespace MiniVmm.Native;

/// <summary>Flags of memfd_create(2) (Linux values).</summary>
[Flags]
public enum MemfdFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>MFD_CLOEXEC: close the descriptor on exec.</summary>
    CloseOnExec = 0x1,
    /// <summary>MFD_ALLOW_SEALING: allow F_ADD_SEALS on the file.</summary>
    AllowSealing = 0x2,
    /// <summary>MFD_HUGETLB: back the file with huge pages from hugetlbfs.</summary>
    HugeTlb = 0x4,
}
