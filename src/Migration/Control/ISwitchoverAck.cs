namespace MiniVmm.Migration.Control;

/// <summary>
/// The switchover-ack protocol as a device's handlers see it (QEMU's <c>migrate_switchover_ack</c>
/// and <c>qemu_loadvm_approve_switchover</c>): whether the capability is on, and, on the
/// destination, the device's approval once its initial data has arrived.
/// </summary>
public interface ISwitchoverAck
{
    /// <summary>Whether the <c>switchover-ack</c> capability is on for the migration being run (or the next one).</summary>
    bool IsEnabled { get; }

    /// <summary>
    /// Destination: one device approves the switchover; the last approval sends SWITCHOVER_ACK
    /// to the source. Loading thread, big lock held.
    /// </summary>
    /// <exception cref="InvalidOperationException">No incoming load runs, or no approval was outstanding.</exception>
    void ApproveSwitchover();
}
