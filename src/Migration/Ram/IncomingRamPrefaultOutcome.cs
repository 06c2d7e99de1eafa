namespace MiniVmm.Migration.Ram;

/// <summary>Where a destination's background RAM prefault stands.</summary>
public enum IncomingRamPrefaultOutcome
{
    /// <summary>Not started (no <c>-incoming</c>, or turned off).</summary>
    NotStarted,

    /// <summary>Populating.</summary>
    Running,

    /// <summary>All RAM is populated.</summary>
    Completed,

    /// <summary>The stream arrived first: the loader took over.</summary>
    Yielded,

    /// <summary>The host's available memory reached the reserve.</summary>
    StoppedForMemory,

    /// <summary>The kernel has no MADV_POPULATE_WRITE (before Linux 5.14): nothing to gain.</summary>
    Unsupported,

    /// <summary>A populate call failed (logged).</summary>
    Failed,
}
