namespace MiniVmm.Native;

/// <summary>Flags of pipe2(2) (Linux x86_64 values).</summary>
[Flags]
public enum PipeFlags
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>O_NONBLOCK on both ends.</summary>
    NonBlocking = 0x800,
    /// <summary>O_DIRECT: packet mode.</summary>
    Direct = 0x4000,
    /// <summary>O_CLOEXEC on both ends.</summary>
    CloseOnExec = 0x80000,
}
