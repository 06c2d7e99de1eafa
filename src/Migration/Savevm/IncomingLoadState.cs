using MiniVmm.Migration.ReturnPath;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// What the destination keeps beside the stream while one load runs (the parts of QEMU's
/// <c>MigrationIncomingState</c> the loader uses): the return path, opened when the source
/// sends <c>OPEN_RETURN_PATH</c>, and the switchover-ack count — how many devices still have to
/// approve the switchover before <c>SWITCHOVER_ACK</c> goes to the source. Used on the loading
/// thread, big lock held.
/// </summary>
public sealed class IncomingLoadState : IDisposable
{
    private readonly System.IO.Stream? _channel;
    private readonly object _gate = new();
    private ReturnPathWriter? _returnPath;
    private int _pendingAcks;
    private bool _acked;

    /// <summary>Creates the state for one load.</summary>
    /// <param name="returnChannel">
    /// Where return-path messages go (the migration connection); null when the transport has no
    /// way back (a file, a one-way exec pipe): the return path then opens but its messages are
    /// dropped, so a stream saved with <c>return-path</c> still loads.
    /// </param>
    /// <param name="switchoverAck">Whether the <c>switchover-ack</c> capability is on at the destination.</param>
    public IncomingLoadState(System.IO.Stream? returnChannel = null, bool switchoverAck = false)
    {
        _channel = returnChannel;
        SwitchoverAckEnabled = switchoverAck;
    }

    /// <summary>Whether <c>switchover-ack</c> is on for this load.</summary>
    public bool SwitchoverAckEnabled { get; }

    /// <summary>The return path, once the source asked for it.</summary>
    public ReturnPathWriter? ReturnPath
    {
        get
        {
            lock (_gate)
            {
                return _returnPath;
            }
        }
    }

    /// <summary>How many devices still have to approve the switchover.</summary>
    public int PendingSwitchoverAcks
    {
        get
        {
            lock (_gate)
            {
                return _pendingAcks;
            }
        }
    }

    /// <summary>Whether SWITCHOVER_ACK has gone to the source.</summary>
    public bool SwitchoverAcked
    {
        get
        {
            lock (_gate)
            {
                return _acked;
            }
        }
    }

    /// <summary>
    /// Right after load_setup, with <c>switchover-ack</c> on: counts the entries whose
    /// <c>switchover_ack_needed</c> says yes (QEMU's <c>qemu_loadvm_state_switchover_ack_needed</c>).
    /// </summary>
    internal void CountSwitchoverAcks(IEnumerable<SaveStateEntry> entries)
    {
        if (!SwitchoverAckEnabled)
        {
            return;
        }

        int needed = entries.Count(e => e.Handlers is { } handlers && handlers.SwitchoverAckNeeded());
        lock (_gate)
        {
            _pendingAcks = needed;
        }
    }

    /// <summary>
    /// <c>OPEN_RETURN_PATH</c>: opens the return path; with <c>switchover-ack</c> on and no
    /// device waiting to approve, the ack goes out at once. A second OPEN is ignored, as QEMU
    /// only reports it.
    /// </summary>
    /// <returns>False when the return path was already open.</returns>
    internal bool OpenReturnPath()
    {
        lock (_gate)
        {
            if (_returnPath is not null)
            {
                return false;
            }

            _returnPath = new ReturnPathWriter(_channel ?? System.IO.Stream.Null);
            if (SwitchoverAckEnabled && _pendingAcks == 0)
            {
                SendAck();
            }

            return true;
        }
    }

    /// <summary>
    /// One device's approval of the switchover (QEMU's <c>qemu_loadvm_approve_switchover</c>,
    /// VFIO calls it on <c>INIT_DATA_SENT</c>); the last one sends SWITCHOVER_ACK.
    /// </summary>
    /// <exception cref="InvalidOperationException">No approval was outstanding (the device approved twice, or switchover-ack is off).</exception>
    /// <exception cref="ReturnPathException">The ack could not be sent.</exception>
    public void ApproveSwitchover()
    {
        lock (_gate)
        {
            if (!SwitchoverAckEnabled || _pendingAcks == 0)
            {
                throw new InvalidOperationException(
                    SwitchoverAckEnabled
                        ? "a switchover approval arrived but no device is still waiting to approve"
                        : "a switchover approval arrived but switchover-ack is off");
            }

            if (--_pendingAcks == 0)
            {
                if (_returnPath is null)
                {
                    throw new InvalidOperationException("every device approved the switchover but the source never opened the return path");
                }

                SendAck();
            }
        }
    }

    /// <summary>
    /// Tells the source the destination is done (SHUT, 0 on success, 1 on failure) when the
    /// return path is open. Called once the load has ended, after the run state is decided.
    /// </summary>
    public void Shut(bool failed)
    {
        ReturnPathWriter? returnPath = ReturnPath;
        returnPath?.SendShut(failed);
    }

    private void SendAck()
    {
        _returnPath!.SendSwitchoverAck();
        _acked = true;
    }

    /// <inheritdoc />
    public void Dispose() => ReturnPath?.Dispose();
}
