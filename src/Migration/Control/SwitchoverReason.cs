namespace MiniVmm.Migration.Control;

/// <summary>Why an outgoing migration stopped iterating and switched over.</summary>
public enum SwitchoverReason
{
    /// <summary>
    /// What was left to send fitted in the downtime limit: pending bytes at or below the
    /// threshold (the measured bandwidth times <c>downtime-limit</c>).
    /// </summary>
    PendingBelowThreshold,

    /// <summary>Nothing was left to send (an idle or stopped guest, or nothing that iterates).</summary>
    NothingPending,

    /// <summary>
    /// Pending was above the threshold but iterating could no longer shrink it (every entry sent
    /// all it could before the switchover, like a device whose stop-copy size only moves then):
    /// the source switched over anyway rather than iterate forever.
    /// </summary>
    IterationStalled,
}
