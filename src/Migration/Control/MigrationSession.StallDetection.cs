using MiniVmm.Migration.Stall;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Control;

/// <summary>
/// The source's stall detection (<c>x-stall-timeout</c>): a <see cref="StallWatchdog"/> that
/// runs from the start of setup until the migration thread cleans up. Over TCP progress is the
/// bytes the destination's kernel acked (so a destination that stops reading is caught while our
/// send buffer still takes writes) and the source only counts as waiting while bytes are in
/// flight or it waits for the destination's answer (switchover ack, SHUT); over anything else
/// progress is the stream bytes written. Paused in <c>pre-switchover</c>, nothing counts.
/// </summary>
public sealed partial class MigrationSession
{
    private StallWatchdog? _stallWatchdog;
    private int _awaitingDestination;

    /// <summary>
    /// Whether the stream writer sends guest pages by reference with gathered sends (the
    /// transport is a socket); false until the connection is made. Any thread.
    /// </summary>
    public bool SendsByReference => _stream?.SendsByReference ?? false;

    /// <summary>Starts the watchdog (migration thread, before connecting).</summary>
    private void StartStallWatchdog()
    {
        long timeout = Parameters.XStallTimeout;
        StallDetectionLog.StallTimeout(_logger, timeout);
        _stallWatchdog = new StallWatchdog(_time, StallKind.Destination, () => Parameters.XStallTimeout, ProbeProgress, Stalled);
    }

    private void StopStallWatchdog() => _stallWatchdog?.Dispose();

    /// <summary>
    /// Marks a wait for the destination's answer (no bytes need be in flight meanwhile); dispose
    /// the result when the wait ends. Migration thread.
    /// </summary>
    private AwaitingDestinationScope AwaitDestination()
    {
        Interlocked.Increment(ref _awaitingDestination);
        return new AwaitingDestinationScope(this);
    }

    /// <summary>Reads the counters only: runs on the watchdog's timer thread, no lock held.</summary>
    private StallProbe ProbeProgress()
    {
        MigrationStreamWriter? stream = _stream;
        long written = stream?.BytesWritten ?? 0;
        MigrationStatus status = Status;
        bool running = status is MigrationStatus.Setup or MigrationStatus.Active or MigrationStatus.Device;
        if (TcpSendCounters.Read(TcpSendCounters.SocketOf(_transport)) is { } tcp)
        {
            bool waiting = running && (tcp.InFlight || Volatile.Read(ref _awaitingDestination) > 0);
            return new StallProbe(
                tcp.BytesAcked,
                waiting,
                written,
                $"the destination's kernel acked {tcp.BytesAcked} bytes, {tcp.NotSentBytes} bytes still queued (status {status.ToQapiName()})");
        }

        string what = stream is null ? "no connection yet" : $"{written} stream bytes written";
        return new StallProbe(written, running, written, $"{what} (status {status.ToQapiName()})");
    }

    /// <summary>The watchdog's verdict (its timer thread, no lock held): fail and wake the migration thread.</summary>
    private void Stalled(MigrationStalledException stall)
    {
        StallDetectionLog.OutgoingStalled(_logger, stall.Kind.ToString(), stall.Offset, stall.Message);
        Abort(stall);
        if (Status == MigrationStatus.Failed && ReferenceEquals(_error, stall))
        {
            // Also wakes a connect or TLS handshake still in progress, and the waits on the return path.
            try
            {
                _cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The session is already gone.
            }
        }
    }

    /// <summary>Ends a wait marked by <see cref="AwaitDestination"/>.</summary>
    private readonly struct AwaitingDestinationScope(MigrationSession session) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref session._awaitingDestination);
    }
}
