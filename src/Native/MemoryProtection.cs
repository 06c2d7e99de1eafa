namespace MiniVmm.Native;

/// <summary>Page protection of mmap(2)/mprotect(2) (Linux values).</summary>
[Flags]
public enum MemoryProtection
{
    /// <summary>PROT_NONE: no access.</summary>
    None = 0,
    /// <summary>PROT_READ.</summary>
    Read = 0x1,
    /// <summary>PROT_WRITE.</summary>
    Write = 0x2,
    /// <summary>PROT_EXEC.</summary>
    Execute = 0x4,
    /// <summary>PROT_READ | PROT_WRITE.</summary>
    ReadWrite = Read | Write,
}
