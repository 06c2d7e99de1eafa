namespace MiniVmm.Native;

/// <summary>File seals of a memfd (fcntl F_ADD_SEALS, Linux values).</summary>
[Flags]
public enum FileSeals
{
    /// <summary>No seal.</summary>
    None = 0,
    /// <summary>F_SEAL_SEAL: no further seal may be added.</summary>
    Seal = 0x1,
    /// <summary>F_SEAL_SHRINK: the file can never become smaller, so no mapping of it can fault past the end.</summary>
    Shrink = 0x2,
    /// <summary>F_SEAL_GROW: the file can never become larger.</summary>
    Grow = 0x4,
    /// <summary>F_SEAL_WRITE: the contents can no longer change.</summary>
    Write = 0x8,
}
