using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// The callbacks of a live savevm entry (QEMU's <c>SaveVMHandlers</c>), registered with
/// <see cref="SaveStateRegistry.RegisterLive"/>. The handler object is QEMU's "opaque".
/// <see cref="Features"/> says which stream-shaping callbacks exist; every other member has a
/// default that behaves as QEMU does when the pointer is NULL. A callback reports failure by
/// throwing; the core turns that into a failed migration and never writes a section header for
/// a handler (the core frames every body it writes).
/// </summary>
/// <remarks>
/// Lock rules follow QEMU 7.2 (<c>include/migration/register.h</c>; the table in
/// <c>docs/architecture.md</c>). Source side:
/// <see cref="SavePrepare"/> on the QMP thread with the big lock held;
/// <see cref="SaveSetup"/>, <see cref="SaveLiveIterate"/> and the pending-size callbacks on the
/// migration thread without it (a handler takes it itself where it needs it);
/// <see cref="SaveLiveCompletePrecopy"/> and <see cref="SaveState"/> with it held and the VM
/// stopped; <see cref="SaveCleanup"/> with it held. Destination side: everything with it held.
/// <see cref="IsActive"/>, <see cref="IsActiveIterate"/> and <see cref="HasPostcopy"/> may be
/// called either way.
/// </remarks>
public interface ISaveVmHandlers
{
    /// <summary>Which of the optional stream-shaping callbacks this handler implements.</summary>
    SaveVmHandlerFeatures Features { get; }

    /// <summary>
    /// What this entry's sections carry, for the accounting of stream bytes by kind (metrics,
    /// the migration timeline); <see cref="SectionKind.Other"/> unless a handler says otherwise.
    /// Any thread.
    /// </summary>
    SectionKind Kind => SectionKind.Other;

    /// <summary>
    /// Device data bytes this handler has put in the stream during the current migration: the
    /// device's own data only, without the section framing or the handler's markers and sizes
    /// (QEMU's VFIO <c>bytes_transferred</c>, which <c>query-migrate</c> sums over the
    /// <see cref="SectionKind.Vfio"/> handlers); 0 unless a handler counts it. Any thread.
    /// </summary>
    long BytesTransferred => 0;

    // ---- Source, QMP thread, big lock held ----

    /// <summary>
    /// <c>save_prepare</c>: runs when <c>migrate</c> is accepted, before the migration enters
    /// <c>setup</c>; throwing refuses the migration with that error. Big lock held.
    /// </summary>
    void SavePrepare()
    {
    }

    // ---- Source, migration thread, big lock NOT held (QEMU 7.2) ----

    /// <summary>
    /// <c>save_setup</c>: writes the body of this entry's START section right after the stream
    /// header (RAM: the block list; dirty logging starts). Migration thread, big lock not held
    /// (QEMU 7.2; held in QEMU ≥ 8.2).
    /// </summary>
    void SaveSetup(MigrationStreamWriter stream) =>
        throw new NotSupportedException($"{GetType().Name} has no save_setup");

    /// <summary>
    /// <c>save_live_iterate</c>: writes one PART section body, honouring the stream's rate
    /// limit. Migration thread, big lock not held.
    /// </summary>
    IterationOutcome SaveLiveIterate(MigrationStreamWriter stream) =>
        throw new NotSupportedException($"{GetType().Name} has no save_live_iterate");

    /// <summary>
    /// <c>state_pending_estimate</c>: a cheap guess of what is left. Migration thread, big lock
    /// not held.
    /// </summary>
    PendingSize StatePendingEstimate() => PendingSize.None;

    /// <summary>
    /// <c>state_pending_exact</c>: what is left, after synchronising (RAM harvests the dirty
    /// bitmap here). Migration thread, big lock not held; a handler takes it where it needs it.
    /// </summary>
    PendingSize StatePendingExact() => StatePendingEstimate();

    /// <summary>
    /// <c>is_active</c>: false excludes the entry from setup, iteration, completion, pending
    /// and load setup. Any thread, lock held or not.
    /// </summary>
    bool IsActive() => true;

    /// <summary><c>is_active_iterate</c>: false skips the entry in an iteration round. Any thread.</summary>
    bool IsActiveIterate() => true;

    /// <summary><c>has_postcopy</c>: whether the entry can move data after switchover. Any thread.</summary>
    bool HasPostcopy() => false;

    // ---- Source, migration thread, big lock held, VM stopped ----

    /// <summary>
    /// <c>save_live_complete_precopy</c>: writes the END section body with everything that is
    /// left. Big lock held, VM stopped.
    /// </summary>
    void SaveLiveCompletePrecopy(MigrationStreamWriter stream) =>
        throw new NotSupportedException($"{GetType().Name} has no save_live_complete_precopy");

    /// <summary>
    /// <c>save_state</c>: writes a FULL section body after the iterable entries completed
    /// (an iterable entry with this too, like VFIO, gets both). Big lock held, VM stopped.
    /// </summary>
    void SaveState(MigrationStreamWriter stream) =>
        throw new NotSupportedException($"{GetType().Name} has no save_state");

    /// <summary>
    /// <c>save_cleanup</c>: releases what setup took, after success or failure; may run when
    /// <see cref="SaveSetup"/> never ran. Big lock held.
    /// </summary>
    void SaveCleanup()
    {
    }

    // ---- Destination, big lock held ----

    /// <summary>
    /// <c>load_setup</c>: runs after the header and configuration, before any section is read,
    /// for active entries. Big lock held.
    /// </summary>
    void LoadSetup()
    {
    }

    /// <summary>
    /// <c>load_state</c>: reads one section body (START, PART, END or FULL) written by a
    /// source of version <paramref name="versionId"/>. Big lock held (released while waiting
    /// for data).
    /// </summary>
    void LoadState(MigrationStreamReader stream, int versionId);

    /// <summary>
    /// <c>load_cleanup</c>: after the load ended, successfully or not; may run when
    /// <see cref="LoadSetup"/> never ran. Big lock held.
    /// </summary>
    void LoadCleanup()
    {
    }

    /// <summary>
    /// <c>switchover_ack_needed</c> (QEMU ≥ 8.1): whether the destination must acknowledge
    /// before the source may switch over. Destination, after load setup, big lock held.
    /// </summary>
    bool SwitchoverAckNeeded() => false;
}
