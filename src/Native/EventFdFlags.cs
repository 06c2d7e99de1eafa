namespace MiniVmm.Native;

/// <summary>Flags of eventfd(2) (Linux x86_64 values).</summary>
[Flags]
public enum EventFdFlags
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>EFD_SEMAPHORE: each read takes 1 from the counter instead of all of it.</summary>
    Semaphore = 0x1,
    /// <summary>EFD_NONBLOCK.</summary>
    NonBlocking = 0x800,
    /// <summary>EFD_CLOEXEC.</summary>
    CloseOnExec = 0x80000,
}
