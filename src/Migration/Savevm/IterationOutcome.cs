namespace MiniVmm.Migration.Savevm;

/// <summary>What one <see cref="ISaveVmHandlers.SaveLiveIterate"/> call achieved.</summary>
public enum IterationOutcome
{
    /// <summary>More data remains (QEMU returns 0).</summary>
    MoreData,
    /// <summary>Everything pending was sent (QEMU returns 1).</summary>
    Finished,
}
