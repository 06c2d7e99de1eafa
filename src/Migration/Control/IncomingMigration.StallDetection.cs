using MiniVmm.Migration.Stall;
using MiniVmm.Migration.Transport;

namespace MiniVmm.Migration.Control;

/// <summary>
/// The destination's stall detection: from the moment the source connects until the load ends, a
/// <see cref="StallWatchdog"/> watches the stream bytes read; when none arrive for
/// <c>x-stall-timeout</c> ms (the destination's own parameter, read at each poll, so
/// <c>migrate-set-parameters</c> before or after <c>migrate-incoming</c> applies), the load fails
/// with a <see cref="MigrationStalledException"/> of kind <see cref="StallKind.Source"/>.
/// </summary>
public sealed partial class IncomingMigration
{
    private StallWatchdog? _stallWatchdog;
    private volatile MigrationStalledException? _stall;

    /// <summary>
    /// The destination's <c>x-stall-timeout</c> in ms, read at each poll (0 = off). Null: no
    /// stall detection.
    /// </summary>
    public Func<long>? StallTimeoutMilliseconds { get; init; }

    /// <summary>Starts the watchdog once the source has connected (incoming thread).</summary>
    private void StartStallWatchdog()
    {
        if (StallTimeoutMilliseconds is not { } timeout)
        {
            return;
        }

        _stallWatchdog = new StallWatchdog(_vm.Time, StallKind.Source, timeout, ProbeProgress, Stalled);
    }

    private void StopStallWatchdog() => _stallWatchdog?.Dispose();

    /// <summary>The error to report: the stall, when the watchdog caused the failure.</summary>
    private Exception ReasonFor(Exception error) => _stall ?? error;

    /// <summary>Reads the counter only (the watchdog's timer thread, no lock held).</summary>
    private StallProbe ProbeProgress()
    {
        long offset = BytesReceived;
        bool loading = Status is MigrationStatus.None or MigrationStatus.Active;
        return new StallProbe(offset, loading, offset, $"{offset} stream bytes received (status {Status.ToQapiName()})");
    }

    /// <summary>The watchdog's verdict (timer thread, no lock held): wakes the loader's read.</summary>
    private void Stalled(MigrationStalledException stall)
    {
        _stall = stall;
        StallDetectionLog.IncomingStalled(_logger, stall.Kind.ToString(), stall.Offset, stall.Message);
        TransportShutdown.Shutdown(_transport);
    }
}
