using System.Diagnostics;
using System.Diagnostics.Metrics;
using MiniVmm.Migration.Savevm;

namespace MiniVmm.Migration.Control;

/// <summary>
/// Migration's standard .NET diagnostics: the <see cref="System.Diagnostics.Metrics.Meter"/>
/// and the <see cref="System.Diagnostics.ActivitySource"/> named <c>MiniVmm.Migration</c>, so
/// that <c>dotnet-counters monitor --counters MiniVmm.Migration</c>, <c>dotnet-trace</c> or any
/// OpenTelemetry exporter (<c>AddMeter("MiniVmm.Migration")</c>,
/// <c>AddSource("MiniVmm.Migration")</c>) sees migrations with no code change. Instruments follow
/// OpenTelemetry's naming (lowercase, dotted, UCUM units):
/// <list type="table">
/// <item><term><c>minivmm.migration.bytes_sent</c></term><description>counter, <c>By</c>, tag <c>section.kind</c> = ram | vfio | harness | other: stream bytes the source wrote.</description></item>
/// <item><term><c>minivmm.migration.pages</c></term><description>counter, <c>{page}</c>, tag <c>page.kind</c> = normal | zero: RAM pages sent.</description></item>
/// <item><term><c>minivmm.migration.dirty_syncs</c></term><description>counter, <c>{sync}</c>: dirty-bitmap syncs (passes).</description></item>
/// <item><term><c>minivmm.migration.dirty_rate</c></term><description>gauge, <c>{page}/s</c>: how fast the guest dirties RAM, during a migration.</description></item>
/// <item><term><c>minivmm.migration.pending</c></term><description>gauge, <c>By</c>: what is left to send, during a migration.</description></item>
/// <item><term><c>minivmm.migration.threshold</c></term><description>gauge, <c>By</c>: the switchover threshold (bandwidth × downtime limit), during a migration.</description></item>
/// <item><term><c>minivmm.migration.bandwidth</c></term><description>gauge, <c>By/s</c>: the bandwidth of the last rate window, during a migration.</description></item>
/// <item><term><c>minivmm.migration.cpu_throttle</c></term><description>gauge, <c>%</c>: the auto-converge vCPU throttle, during a migration.</description></item>
/// <item><term><c>minivmm.migration.downtime</c></term><description>histogram, <c>ms</c>: the downtime of each completed migration.</description></item>
/// <item><term><c>minivmm.migration.duration</c></term><description>histogram, <c>ms</c>, tag <c>outcome</c>: the total time of each migration.</description></item>
/// <item><term><c>minivmm.migration.count</c></term><description>counter, <c>{migration}</c>, tag <c>outcome</c> = completed | failed | cancelled: finished outgoing migrations.</description></item>
/// <item><term><c>minivmm.migration.incoming.bytes_loaded</c></term><description>counter, <c>By</c>, tag <c>section.kind</c>: stream bytes the destination loaded.</description></item>
/// <item><term><c>minivmm.migration.incoming.count</c></term><description>counter, <c>{migration}</c>, tag <c>outcome</c> = completed | failed: finished incoming migrations.</description></item>
/// </list>
/// Spans (all <see cref="ActivityKind.Internal"/>): on the source <c>migration.outgoing</c> with
/// the children <c>migration.setup</c>, <c>migration.iteration</c> per pass (passes shorter
/// than a 100 ms rate window share the span of the pass before: tags <c>migration.pass</c> and
/// <c>migration.pass.last</c>),
/// <c>migration.switchover</c> (children <c>migration.switchover.stop</c>,
/// <c>migration.switchover.pause</c> with pause-before-switchover,
/// <c>migration.switchover.device_state</c>, <c>migration.switchover.complete</c>) and
/// <c>migration.cleanup</c>; on the destination <c>migration.incoming</c> with
/// <c>migration.incoming.load</c> (child <c>migration.incoming.device_state</c>: the END and FULL
/// sections, each a <c>migration.incoming.section</c>) and <c>migration.incoming.start</c>. The
/// roots carry <c>migration.status</c>; a failure sets <c>error.type</c> and the Error status.
/// </summary>
/// <remarks>
/// One instance per VM (the <see cref="MigrationCoordinator"/> owns one or gets it from the
/// service container); it holds no static state. With an <see cref="IMeterFactory"/> the meter
/// comes from the factory (the container's <c>AddMetrics()</c>), otherwise this object creates
/// it and disposes it.
/// </remarks>
public sealed class MigrationTelemetry : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "MiniVmm.Migration";

    /// <summary>The activity source's name.</summary>
    public const string ActivitySourceName = "MiniVmm.Migration";

    /// <summary>The tag of a section kind (<c>ram</c>, <c>vfio</c>, <c>harness</c>, <c>other</c>).</summary>
    public const string SectionKindTag = "section.kind";

    /// <summary>The tag of a page kind (<c>normal</c>, <c>zero</c>).</summary>
    public const string PageKindTag = "page.kind";

    /// <summary>The tag of a finished migration's outcome (<c>completed</c>, <c>failed</c>, <c>cancelled</c>).</summary>
    public const string OutcomeTag = "outcome";

    /// <summary>The span tag with the migration's status (QAPI name).</summary>
    public const string StatusTag = "migration.status";

    /// <summary>The span tag with the type of the exception that failed the migration (OpenTelemetry's <c>error.type</c>).</summary>
    public const string ErrorTypeTag = "error.type";

    private readonly bool _ownsMeter;
    private readonly Counter<long> _bytesSent;
    private readonly Counter<long> _pages;
    private readonly Counter<long> _dirtySyncs;
    private readonly Histogram<double> _downtime;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _count;
    private readonly Counter<long> _bytesLoaded;
    private readonly Counter<long> _incomingCount;
    private readonly Lock _gate = new();
    private MigrationSession? _live;
    private int _disposed;

    /// <summary>Creates the meter (from <paramref name="meterFactory"/> when given), its instruments and the activity source.</summary>
    public MigrationTelemetry(IMeterFactory? meterFactory = null)
    {
        string? version = typeof(MigrationTelemetry).Assembly.GetName().Version?.ToString();
        var options = new MeterOptions(MeterName) { Version = version };
        _ownsMeter = meterFactory is null;
        Meter = meterFactory?.Create(options) ?? new Meter(options);
        ActivitySource = new ActivitySource(ActivitySourceName, version);

        _bytesSent = Meter.CreateCounter<long>(
            "minivmm.migration.bytes_sent", "By", "Migration stream bytes the source wrote, by section kind.");
        _pages = Meter.CreateCounter<long>(
            "minivmm.migration.pages", "{page}", "RAM pages sent, with their data (normal) or as zero pages.");
        _dirtySyncs = Meter.CreateCounter<long>(
            "minivmm.migration.dirty_syncs", "{sync}", "Dirty-bitmap syncs; each starts a pass.");
        Meter.CreateObservableGauge(
            "minivmm.migration.dirty_rate", () => Observe(s => s.DirtyPagesRate), "{page}/s",
            "How fast the guest dirties RAM during the running migration.");
        Meter.CreateObservableGauge(
            "minivmm.migration.pending", () => Observe(s => s.PendingBytes), "By",
            "What the running migration still has to send.");
        Meter.CreateObservableGauge(
            "minivmm.migration.threshold", () => Observe(s => s.ThresholdBytes), "By",
            "The running migration's switchover threshold: what the bandwidth moves within the downtime limit.");
        Meter.CreateObservableGauge(
            "minivmm.migration.bandwidth", () => Observe(s => s.BandwidthBytesPerSecond), "By/s",
            "The running migration's bandwidth over the last rate window.");
        Meter.CreateObservableGauge(
            "minivmm.migration.cpu_throttle", () => Observe(s => s.CpuThrottlePercentage), "%",
            "The auto-converge vCPU throttle during the running migration.");
        _downtime = Meter.CreateHistogram(
            "minivmm.migration.downtime", "ms", "How long the VM was stopped for the switchover of a completed migration.",
            tags: null, advice: new InstrumentAdvice<double>
            {
                HistogramBucketBoundaries = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000],
            });
        _duration = Meter.CreateHistogram(
            "minivmm.migration.duration", "ms", "The total time of a finished migration, by outcome.",
            tags: null, advice: new InstrumentAdvice<double>
            {
                HistogramBucketBoundaries = [100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000, 3600000],
            });
        _count = Meter.CreateCounter<long>(
            "minivmm.migration.count", "{migration}", "Finished outgoing migrations, by outcome.");
        _bytesLoaded = Meter.CreateCounter<long>(
            "minivmm.migration.incoming.bytes_loaded", "By", "Migration stream bytes the destination loaded, by section kind.");
        _incomingCount = Meter.CreateCounter<long>(
            "minivmm.migration.incoming.count", "{migration}", "Finished incoming migrations, by outcome.");
    }

    /// <summary>The meter (<see cref="MeterName"/>).</summary>
    public Meter Meter { get; }

    /// <summary>The activity source (<see cref="ActivitySourceName"/>).</summary>
    public ActivitySource ActivitySource { get; }

    /// <summary>The outcome tag value of a final status: <c>completed</c>, <c>cancelled</c> or <c>failed</c>.</summary>
    public static string OutcomeOf(MigrationStatus status) => status switch
    {
        MigrationStatus.Completed => "completed",
        MigrationStatus.Cancelled or MigrationStatus.Cancelling => "cancelled",
        _ => "failed",
    };

    /// <summary>Marks <paramref name="activity"/> as failed by <paramref name="error"/>: <c>error.type</c>, the exception event, the Error status.</summary>
    public static void SetError(Activity? activity, Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (activity is null)
        {
            return;
        }

        activity.SetTag(ErrorTypeTag, error.GetType().FullName);
        activity.AddException(error);
        activity.SetStatus(ActivityStatusCode.Error, error.Message);
    }

    /// <summary>Starts a span, a child of the current one, when anyone listens.</summary>
    internal Activity? StartActivity(string name) => ActivitySource.StartActivity(name, ActivityKind.Internal);

    internal void SectionBytesSent(SectionKind kind, long bytes) =>
        _bytesSent.Add(bytes, new KeyValuePair<string, object?>(SectionKindTag, kind.ToTagValue()));

    internal void SectionBytesLoaded(SectionKind kind, long bytes) =>
        _bytesLoaded.Add(bytes, new KeyValuePair<string, object?>(SectionKindTag, kind.ToTagValue()));

    internal void PagesSent(long normal, long zero)
    {
        if (normal > 0)
        {
            _pages.Add(normal, new KeyValuePair<string, object?>(PageKindTag, "normal"));
        }

        if (zero > 0)
        {
            _pages.Add(zero, new KeyValuePair<string, object?>(PageKindTag, "zero"));
        }
    }

    internal void DirtySyncs(long syncs)
    {
        if (syncs > 0)
        {
            _dirtySyncs.Add(syncs);
        }
    }

    internal void Downtime(long milliseconds) => _downtime.Record(milliseconds);

    internal void OutgoingFinished(MigrationStatus status, long totalMilliseconds)
    {
        var outcome = new KeyValuePair<string, object?>(OutcomeTag, OutcomeOf(status));
        _count.Add(1, outcome);
        _duration.Record(totalMilliseconds, outcome);
    }

    internal void IncomingFinished(MigrationStatus status) =>
        _incomingCount.Add(1, new KeyValuePair<string, object?>(OutcomeTag, OutcomeOf(status)));

    /// <summary>Makes <paramref name="session"/> the one the gauges report, until <see cref="Untrack"/>.</summary>
    internal void Track(MigrationSession session)
    {
        lock (_gate)
        {
            _live = session;
        }
    }

    /// <summary>Stops reporting <paramref name="session"/> in the gauges (if it still is the one).</summary>
    internal void Untrack(MigrationSession session)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_live, session))
            {
                _live = null;
            }
        }
    }

    private IEnumerable<Measurement<T>> Observe<T>(Func<MigrationTimelineSample, T> value)
        where T : struct
    {
        MigrationSession? live;
        lock (_gate)
        {
            live = _live;
        }

        return live?.Timeline.Latest is { } sample ? [new Measurement<T>(value(sample))] : [];
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        ActivitySource.Dispose();
        if (_ownsMeter)
        {
            Meter.Dispose();
        }
    }
}
