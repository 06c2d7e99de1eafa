using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Control;

/// <summary>
/// The <c>MiniVmm.Migration</c> meter and activity source during real in-process migrations
/// between two coordinators over a UNIX socket, heard with <see cref="MeterListener"/> and
/// <see cref="ActivityListener"/> and checked against each side's <c>query-migrate</c>.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class MigrationTelemetryTests
{
    private const long RamSize = 32L << 20;
    private const long DataBytes = 8L << 20;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private string _directory = null!;
    private readonly List<IDisposable> _disposables = [];

    [SetUp]
    public void CreateDirectory() => _directory = Directory.CreateTempSubdirectory("minivmm-tm-").FullName;

    [TearDown]
    public void CleanUp()
    {
        for (int i = _disposables.Count - 1; i >= 0; i--)
        {
            _disposables[i].Dispose();
        }

        _disposables.Clear();
        Directory.Delete(_directory, recursive: true);
    }

    [Test]
    public void A_completed_migration_reports_what_query_migrate_reports()
    {
        Node source = Node.RunningSource(RamSize, _disposables);
        Node destination = Node.Destination(RamSize, _disposables);
        using var telemetry = new TelemetryRecorder(source.Coordinator.Telemetry, destination.Coordinator.Telemetry);
        string uri = $"unix:{Path.Combine(_directory, "migration.sock")}";
        IncomingMigration incoming = StartIncoming(destination, uri);

        MigrationSession session = StartOutgoing(source, uri, maxBandwidth: 48L << 20);
        Assert.That(session.Finished.Wait(Wait), Is.True, "the migration finished");
        Assert.That(incoming.Finished.Wait(Wait), Is.True, "the destination finished");
        MigrationInfo info = source.Coordinator.Query();
        MigrationInfo arrived = destination.Coordinator.Query();
        RamTransferStats ram = info.Ram!;
        telemetry.Meters.RecordObservableInstruments();

        Assert.Multiple(() =>
        {
            Assert.That(info.Status, Is.EqualTo(MigrationStatus.Completed), info.ErrorDescription);
            Assert.That(arrived.Status, Is.EqualTo(MigrationStatus.Completed), arrived.ErrorDescription);

            Measured sent = telemetry.Sum(source, "minivmm.migration.bytes_sent");
            Assert.That(sent.Total, Is.EqualTo(session.BytesSent.Total).And.GreaterThan(DataBytes), "bytes sent: the whole stream");
            Assert.That(sent.Tags(MigrationTelemetry.SectionKindTag), Is.EquivalentTo(new[] { "ram", "other" }), "a RAM-only machine: ram and other");
            Assert.That(sent.By(MigrationTelemetry.SectionKindTag, "ram"), Is.EqualTo(session.BytesSent.Ram));
            Assert.That(sent.By(MigrationTelemetry.SectionKindTag, "ram"), Is.InRange(ram.Transferred, ram.Transferred + ram.Transferred / 100),
                "RAM sections are query-migrate's RAM bytes plus their framing");
            Assert.That(sent.By(MigrationTelemetry.SectionKindTag, "other"), Is.InRange(1, 4096), "header, timer, globalstate, EOF, vmdesc");

            Measured loaded = telemetry.Sum(destination, "minivmm.migration.incoming.bytes_loaded");
            Assert.That(loaded.Total, Is.EqualTo(incoming.BytesReceived), "bytes loaded: the whole stream read");
            Assert.That(loaded.By(MigrationTelemetry.SectionKindTag, "ram"), Is.EqualTo(sent.By(MigrationTelemetry.SectionKindTag, "ram")));
            Assert.That(loaded.By(MigrationTelemetry.SectionKindTag, "other"), Is.EqualTo(sent.By(MigrationTelemetry.SectionKindTag, "other")));

            Measured pages = telemetry.Sum(source, "minivmm.migration.pages");
            Assert.That(pages.By(MigrationTelemetry.PageKindTag, "normal"), Is.EqualTo(ram.Normal).And.EqualTo(DataBytes / 4096), "normal pages");
            Assert.That(pages.By(MigrationTelemetry.PageKindTag, "zero"), Is.EqualTo(ram.Duplicate).And.EqualTo((RamSize - DataBytes) / 4096), "zero pages");

            Assert.That(telemetry.Sum(source, "minivmm.migration.dirty_syncs").Total, Is.EqualTo(ram.DirtySyncCount).And.EqualTo(info.Passes));
            Assert.That(telemetry.Values(source, "minivmm.migration.downtime"), Is.EqualTo(new[] { (double)info.Downtime!.Value }), "downtime");
            Assert.That(telemetry.Values(source, "minivmm.migration.duration"), Is.EqualTo(new[] { (double)info.TotalTime!.Value }), "total time");
            Assert.That(telemetry.Sum(source, "minivmm.migration.count").Counts(MigrationTelemetry.OutcomeTag),
                Is.EqualTo(new Dictionary<string, double> { ["completed"] = 1 }));
            Assert.That(telemetry.Sum(destination, "minivmm.migration.incoming.count").Counts(MigrationTelemetry.OutcomeTag),
                Is.EqualTo(new Dictionary<string, double> { ["completed"] = 1 }));
            Assert.That(telemetry.Values(source, "minivmm.migration.pending"), Is.Empty, "no gauge once the migration ended");
            Assert.That(telemetry.Sum(destination, "minivmm.migration.bytes_sent").Total, Is.Zero, "the destination sent nothing");
        });
    }

    [Test]
    public void The_gauges_report_the_running_migration_as_query_migrate_does()
    {
        Node source = Node.RunningSource(RamSize, _disposables);
        Node destination = Node.Destination(RamSize, _disposables);
        using var telemetry = new TelemetryRecorder(source.Coordinator.Telemetry);
        string uri = $"unix:{Path.Combine(_directory, "migration.sock")}";
        IncomingMigration incoming = StartIncoming(destination, uri);
        using (source.Vm.Bql.Acquire())
        {
            source.Coordinator.SetCapabilities([(MigrationCapabilities.PauseBeforeSwitchover, true)]);
        }

        MigrationSession session = StartOutgoing(source, uri, maxBandwidth: 48L << 20);
        Assert.That(SpinWait.SpinUntil(() => session.Status == MigrationStatus.PreSwitchover, Wait), Is.True, "paused before the switchover");
        MigrationInfo info = source.Coordinator.Query();
        telemetry.Meters.RecordObservableInstruments();
        MigrationTimelineSample latest = session.Timeline.Latest!;

        Assert.Multiple(() =>
        {
            Assert.That(telemetry.Values(source, "minivmm.migration.pending"), Is.EqualTo(new[] { (double)info.Ram!.Remaining }), "pending = remaining");
            Assert.That(telemetry.Values(source, "minivmm.migration.dirty_rate"), Is.EqualTo(new[] { (double)info.Ram!.DirtyPagesRate }));
            Assert.That(telemetry.Values(source, "minivmm.migration.cpu_throttle"), Is.EqualTo(new[] { (double)info.CpuThrottlePercentage }));
            double bandwidth = telemetry.Values(source, "minivmm.migration.bandwidth").Single();
            Assert.That(bandwidth, Is.GreaterThan(0), "a window was measured");
            Assert.That(bandwidth * 8 / 1e6, Is.EqualTo(info.Mbps).Within(0.01), "bandwidth in bytes/s = mbps");
            Assert.That(telemetry.Values(source, "minivmm.migration.threshold"), Is.EqualTo(new[] { (double)latest.ThresholdBytes }));
            Assert.That(latest.ThresholdBytes, Is.EqualTo((long)(bandwidth / 1000 * source.Coordinator.Parameters.DowntimeLimit)).Within(1));
        });

        using (source.Vm.Bql.Acquire())
        {
            source.Coordinator.Outgoing!.Continue(MigrationStatus.PreSwitchover);
        }

        Assert.That(session.Finished.Wait(Wait) && incoming.Finished.Wait(Wait), Is.True);
        telemetry.Clear();
        telemetry.Meters.RecordObservableInstruments();
        Assert.That(telemetry.Values(source, "minivmm.migration.pending"), Is.Empty, "no gauge once the migration ended");
    }

    [Test]
    public void Each_phase_is_a_span_of_the_migrations_trace_on_both_sides()
    {
        Node source = Node.RunningSource(RamSize, _disposables);
        Node destination = Node.Destination(RamSize, _disposables);
        using var telemetry = new TelemetryRecorder(source.Coordinator.Telemetry, destination.Coordinator.Telemetry);
        string uri = $"unix:{Path.Combine(_directory, "migration.sock")}";
        IncomingMigration incoming = StartIncoming(destination, uri);

        MigrationSession session = StartOutgoing(source, uri, maxBandwidth: 48L << 20);
        Assert.That(session.Finished.Wait(Wait) && incoming.Finished.Wait(Wait), Is.True);
        MigrationInfo info = source.Coordinator.Query();
        IReadOnlyList<Activity> spans = telemetry.Spans(source);
        IReadOnlyList<Activity> arrived = telemetry.Spans(destination);

        Activity root = spans.Single(a => a.OperationName == "migration.outgoing");
        Activity switchover = spans.Single(a => a.OperationName == "migration.switchover");
        Activity[] iterations = [.. spans.Where(a => a.OperationName == "migration.iteration").OrderBy(a => a.StartTimeUtc)];
        Activity incomingRoot = arrived.Single(a => a.OperationName == "migration.incoming");
        Activity load = arrived.Single(a => a.OperationName == "migration.incoming.load");
        Activity deviceState = arrived.Single(a => a.OperationName == "migration.incoming.device_state");
        Activity[] sections = [.. arrived.Where(a => a.OperationName == "migration.incoming.section")];
        Assert.Multiple(() =>
        {
            Assert.That(info.Status, Is.EqualTo(MigrationStatus.Completed));
            Assert.That(root.Parent, Is.Null);
            Assert.That(root.Status, Is.EqualTo(ActivityStatusCode.Ok));
            Assert.That(root.GetTagItem(MigrationTelemetry.StatusTag), Is.EqualTo("completed"));
            Assert.That(root.GetTagItem("migration.downtime_ms"), Is.EqualTo(info.Downtime));
            Assert.That(ChildrenOf(root, spans), Is.EqualTo(new[] { "migration.setup" }
                .Concat(Enumerable.Repeat("migration.iteration", iterations.Length))
                .Concat(["migration.switchover", "migration.cleanup"])), "the phases in order");
            Assert.That(session.Timeline.Passes.Select(p => p.Pass), Is.EqualTo(Enumerable.Range(1, info.Passes - 1)),
                "the timeline has every pass but the switchover's final sync");
            // How many passes get a span of their own depends on how long each pass takes on this
            // machine (a pass shorter than a rate window shares the previous span): at least one.
            Assert.That(iterations, Has.Length.GreaterThanOrEqualTo(1), "an iteration span");
            Assert.That(iterations[0].GetTagItem("migration.pass"), Is.EqualTo(1), "the spans start at pass 1");
            Assert.That(iterations[^1].GetTagItem("migration.pass.last"), Is.EqualTo(info.Passes - 1), "and end at the last pass");
            Assert.That(
                iterations.Skip(1).Select(a => a.GetTagItem("migration.pass")),
                Is.EqualTo(iterations.SkipLast(1).Select(a => (object)((int)a.GetTagItem("migration.pass.last")! + 1))),
                "each span takes up at the pass after the one before");
            Assert.That(iterations.SkipLast(1).Select(a => a.Duration), Has.All.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(95)),
                "a span lasts at least a rate window unless it is the last");
            Assert.That(ChildrenOf(switchover, spans),
                Is.EqualTo(new[] { "migration.switchover.stop", "migration.switchover.device_state", "migration.switchover.complete" }));
            Assert.That(spans.Where(a => a.Status == ActivityStatusCode.Error), Is.Empty);

            Assert.That(incomingRoot.TraceId, Is.Not.EqualTo(root.TraceId), "the trace context does not travel in QEMU's stream");
            Assert.That(incomingRoot.Status, Is.EqualTo(ActivityStatusCode.Ok));
            Assert.That(incomingRoot.GetTagItem(MigrationTelemetry.StatusTag), Is.EqualTo("completed"));
            Assert.That(ChildrenOf(incomingRoot, arrived), Is.EqualTo(new[] { "migration.incoming.load", "migration.incoming.start" }));
            Assert.That(deviceState.ParentSpanId, Is.EqualTo(load.SpanId));
            Assert.That(sections.Select(s => s.ParentSpanId).Distinct(), Is.EqualTo(new[] { deviceState.SpanId }));
            Assert.That(
                sections.Select(s => $"{s.GetTagItem("migration.section.name")}:{s.GetTagItem("migration.section.type")}:{s.GetTagItem(MigrationTelemetry.SectionKindTag)}"),
                Is.EqualTo(new[] { "ram:end:ram", "timer:full:other", "globalstate:full:other" }), "the switchover's sections, each with its kind");
            Assert.That(load.GetTagItem("migration.bytes_loaded"), Is.EqualTo(incoming.BytesReceived));
        });
    }

    [Test]
    public void The_timeline_follows_the_migration_from_setup_to_completion()
    {
        Node source = Node.RunningSource(RamSize, _disposables);
        Node destination = Node.Destination(RamSize, _disposables);
        string uri = $"unix:{Path.Combine(_directory, "migration.sock")}";
        IncomingMigration incoming = StartIncoming(destination, uri);

        MigrationSession session = StartOutgoing(source, uri, maxBandwidth: 48L << 20);
        Assert.That(session.Finished.Wait(Wait) && incoming.Finished.Wait(Wait), Is.True);
        MigrationInfo info = source.Coordinator.Query();
        MigrationTimeline timeline = session.Timeline;
        IReadOnlyList<MigrationTimelineSample> samples = timeline.Samples;
        IReadOnlyList<MigrationTimelineEvent> events = timeline.Events;

        Assert.Multiple(() =>
        {
            Assert.That(info.Status, Is.EqualTo(MigrationStatus.Completed));
            Assert.That(samples, Has.Count.GreaterThanOrEqualTo(4), "setup, some 100 ms windows, switchover, end");
            Assert.That(samples.Select(s => s.TimeMs), Is.Ordered);
            Assert.That(samples.Select(s => s.BytesSent.Total), Is.Ordered, "bytes only grow");
            Assert.That(samples[^1].BytesSent, Is.EqualTo(session.BytesSent));
            Assert.That(samples[^1].Status, Is.EqualTo(MigrationStatus.Completed));
            Assert.That(samples[^1].RunState, Is.EqualTo(RunState.PostMigrate));
            Assert.That((samples[^1].NormalPages, samples[^1].ZeroPages), Is.EqualTo((info.Ram!.Normal, info.Ram.Duplicate)));
            Assert.That(samples[^1].TimeMs, Is.InRange(info.TotalTime!.Value, info.TotalTime.Value + 1000));
            Assert.That(samples.Any(s => s.BandwidthBytesPerSecond > 0 && s.ThresholdBytes > 0 && s.PendingBytes > 0), Is.True,
                "windows measured while RAM was pending");

            Assert.That(events.Where(e => e.Kind == MigrationTimelineEventKind.Status).Select(e => e.Name),
                Is.EqualTo(new[] { "setup", "active", "completed" }));
            Assert.That(events.Where(e => e.Kind == MigrationTimelineEventKind.RunState).Select(e => e.Name),
                Is.EqualTo(new[] { "running", "finish-migrate", "postmigrate" }));
            Assert.That(events.Where(e => e.Kind == MigrationTimelineEventKind.Phase).Select(e => e.Name),
                Is.EqualTo(new[] { "setup", "switchover", "stop", "device_state", "complete", "cleanup" }));
            Assert.That(events.Where(e => e.Kind == MigrationTimelineEventKind.VmEvent).Select(e => e.Name), Is.EqualTo(new[] { "STOP" }));
            Assert.That(events.Select(e => e.TimeMs), Is.Ordered);

            IReadOnlyList<MigrationPassRecord> passes = timeline.Passes;
            Assert.That(passes.Select(p => p.Pass), Is.EqualTo(Enumerable.Range(1, info.Passes - 1)));
            Assert.That(passes.Sum(p => p.BytesSent.Ram), Is.GreaterThan(DataBytes), "the passes send all RAM before the switchover");
            Assert.That(passes.Zip(passes.Skip(1)).All(p => p.First.EndMs == p.Second.StartMs), Is.True, "passes follow each other");
            long downtimeStart = events.Single(e => e.Kind == MigrationTimelineEventKind.Phase && e.Name == "stop").TimeMs;
            Assert.That(passes[^1].EndMs, Is.LessThanOrEqualTo(downtimeStart), "the last pass ends at the switchover");
        });
    }

    [Test]
    public void A_destination_that_closes_the_connection_fails_the_migration_and_its_span()
    {
        Node source = Node.RunningSource(RamSize, _disposables);
        using var telemetry = new TelemetryRecorder(source.Coordinator.Telemetry);
        string path = Path.Combine(_directory, "migration.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var destination = Task.Run(() =>
        {
            // Reads the header and a little RAM, then goes away.
            using Socket connection = listener.Accept();
            byte[] buffer = new byte[64 << 10];
            int read = 0;
            while (read < buffer.Length)
            {
                int n = connection.Receive(buffer, read, buffer.Length - read, SocketFlags.None);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }
        });

        MigrationSession session = StartOutgoing(source, $"unix:{path}", maxBandwidth: 0);
        Assert.That(session.Finished.Wait(Wait), Is.True);
        destination.Wait(Wait);
        MigrationInfo info = source.Coordinator.Query();
        IReadOnlyList<Activity> spans = telemetry.Spans(source);
        Activity root = spans.Single(a => a.OperationName == "migration.outgoing");
        Activity lastIteration = spans.Where(a => a.OperationName == "migration.iteration").OrderBy(a => a.StartTimeUtc).Last();

        Assert.Multiple(() =>
        {
            Assert.That(info.Status, Is.EqualTo(MigrationStatus.Failed));
            Assert.That(info.ErrorDescription, Is.Not.Empty);
            Assert.That(source.Vm.State, Is.EqualTo(RunState.Running), "the source runs on");

            Assert.That(root.Status, Is.EqualTo(ActivityStatusCode.Error));
            Assert.That(root.StatusDescription, Is.EqualTo(info.ErrorDescription));
            Assert.That(root.GetTagItem(MigrationTelemetry.StatusTag), Is.EqualTo("failed"));
            Assert.That(root.GetTagItem(MigrationTelemetry.ErrorTypeTag), Is.EqualTo(session.Error!.GetType().FullName));
            Assert.That(root.Events.Select(e => e.Name), Does.Contain("exception"));
            Assert.That(lastIteration.Status, Is.EqualTo(ActivityStatusCode.Error), "the pass that was sending when the connection went");
            Assert.That(spans.Select(a => a.OperationName), Does.Not.Contain("migration.switchover"));
            Assert.That(ChildrenOf(root, spans)[^1], Is.EqualTo("migration.cleanup"));

            Assert.That(telemetry.Sum(source, "minivmm.migration.count").Counts(MigrationTelemetry.OutcomeTag),
                Is.EqualTo(new Dictionary<string, double> { ["failed"] = 1 }));
            Assert.That(telemetry.Values(source, "minivmm.migration.downtime"), Is.Empty, "no downtime: the VM never stopped");
            Assert.That(telemetry.Sum(source, "minivmm.migration.bytes_sent").Total, Is.EqualTo(session.BytesSent.Total).And.GreaterThan(64 << 10));
            Assert.That(session.Timeline.Events.Where(e => e.Kind == MigrationTimelineEventKind.Status).Select(e => (e.Name, e.Detail)),
                Is.EqualTo(new (string, string?)[] { ("setup", null), ("active", null), ("failed", info.ErrorDescription) }));
        });
    }

    [Test]
    public void A_cancelled_migration_counts_as_cancelled_and_its_span_is_not_an_error()
    {
        Node source = Node.RunningSource(RamSize, _disposables);
        Node destination = Node.Destination(RamSize, _disposables);
        using var telemetry = new TelemetryRecorder(source.Coordinator.Telemetry);
        string uri = $"unix:{Path.Combine(_directory, "migration.sock")}";
        IncomingMigration incoming = StartIncoming(destination, uri);

        MigrationSession session = StartOutgoing(source, uri, maxBandwidth: 4L << 20);
        Assert.That(SpinWait.SpinUntil(() => session.Status == MigrationStatus.Active && session.BytesSent.Ram > 1 << 20, Wait), Is.True,
            "RAM is on its way");
        using (source.Vm.Bql.Acquire())
        {
            source.Coordinator.Cancel();
        }

        Assert.That(session.Finished.Wait(Wait), Is.True);
        incoming.Finished.Wait(Wait);
        MigrationInfo info = source.Coordinator.Query();
        Activity root = telemetry.Spans(source).Single(a => a.OperationName == "migration.outgoing");

        Assert.Multiple(() =>
        {
            Assert.That(info.Status, Is.EqualTo(MigrationStatus.Cancelled));
            Assert.That(telemetry.Sum(source, "minivmm.migration.count").Counts(MigrationTelemetry.OutcomeTag),
                Is.EqualTo(new Dictionary<string, double> { ["cancelled"] = 1 }));
            Assert.That(root.GetTagItem(MigrationTelemetry.StatusTag), Is.EqualTo("cancelled"));
            Assert.That(root.Status, Is.EqualTo(ActivityStatusCode.Unset));
            Assert.That(root.GetTagItem(MigrationTelemetry.ErrorTypeTag), Is.Null);
            Assert.That(session.Timeline.Events.Where(e => e.Kind == MigrationTimelineEventKind.Status).Select(e => e.Name),
                Is.EqualTo(new[] { "setup", "active", "cancelling", "cancelled" }));
        });
    }

    [Test]
    public void A_destination_that_cannot_load_the_stream_fails_its_spans_and_counts_the_failure()
    {
        Node source = Node.RunningSource(RamSize, _disposables);
        Node destination = Node.Destination(RamSize / 2, _disposables);
        using var telemetry = new TelemetryRecorder(destination.Coordinator.Telemetry);
        string uri = $"unix:{Path.Combine(_directory, "migration.sock")}";
        IncomingMigration incoming = StartIncoming(destination, uri);

        MigrationSession session = StartOutgoing(source, uri, maxBandwidth: 0);
        Assert.That(incoming.Finished.Wait(Wait) && session.Finished.Wait(Wait), Is.True);
        MigrationInfo arrived = destination.Coordinator.Query();
        IReadOnlyList<Activity> spans = telemetry.Spans(destination);
        Activity root = spans.Single(a => a.OperationName == "migration.incoming");
        Activity load = spans.Single(a => a.OperationName == "migration.incoming.load");

        Assert.Multiple(() =>
        {
            Assert.That(arrived.Status, Is.EqualTo(MigrationStatus.Failed));
            Assert.That(root.Status, Is.EqualTo(ActivityStatusCode.Error));
            Assert.That(root.GetTagItem(MigrationTelemetry.StatusTag), Is.EqualTo("failed"));
            Assert.That(root.GetTagItem(MigrationTelemetry.ErrorTypeTag), Is.EqualTo(incoming.Error!.GetType().FullName));
            Assert.That(root.StatusDescription, Is.EqualTo(arrived.ErrorDescription));
            Assert.That(load.Status, Is.EqualTo(ActivityStatusCode.Error));
            Assert.That(load.ParentSpanId, Is.EqualTo(root.SpanId));
            Assert.That(spans.Select(a => a.OperationName), Does.Not.Contain("migration.incoming.start"));
            Assert.That(telemetry.Sum(destination, "minivmm.migration.incoming.count").Counts(MigrationTelemetry.OutcomeTag),
                Is.EqualTo(new Dictionary<string, double> { ["failed"] = 1 }));
        });
    }

    private static string[] ChildrenOf(Activity parent, IEnumerable<Activity> spans) =>
        [.. spans.Where(a => a.ParentSpanId == parent.SpanId && a.TraceId == parent.TraceId).OrderBy(a => a.StartTimeUtc).Select(a => a.OperationName)];

    private static IncomingMigration StartIncoming(Node destination, string uri)
    {
        using (destination.Vm.Bql.Acquire())
        {
            return destination.Coordinator.StartIncoming(uri);
        }
    }

    private static MigrationSession StartOutgoing(Node source, string uri, long maxBandwidth)
    {
        using (source.Vm.Bql.Acquire())
        {
            source.Coordinator.SetParameters(new JsonObject { ["max-bandwidth"] = maxBandwidth });
            return source.Coordinator.StartOutgoing(uri);
        }
    }

    /// <summary>One VM: a <c>-M none</c> machine with RAM, built as the host builds it, and its coordinator.</summary>
    private sealed class Node : IDisposable
    {
        private readonly ServiceProvider _provider;

        private Node(long ramSize, RunState initial)
        {
            var services = new ServiceCollection();
            services.AddSingleton(TimeProvider.System);
            services.AddSingleton(new VirtualMachine(TimeProvider.System, initial));
            services.AddMachineNone(ramSize);
            _provider = services.BuildServiceProvider();
            Vm = _provider.GetRequiredService<VirtualMachine>();
            Memory = _provider.GetRequiredService<GuestMemory>();
            Coordinator = new MigrationCoordinator(
                _provider.GetRequiredService<SaveStateRegistry>(),
                Vm,
                _provider.GetRequiredService<SavevmOptions>(),
                _provider.GetRequiredService<GlobalState>(),
                _provider.GetRequiredService<IRamTransferStatistics>());
        }

        public VirtualMachine Vm { get; }

        public GuestMemory Memory { get; }

        public MigrationCoordinator Coordinator { get; }

        /// <summary>A running VM whose first <see cref="DataBytes"/> of RAM hold data (every page non-zero), the rest zero.</summary>
        public static Node RunningSource(long ramSize, List<IDisposable> owner)
        {
            var node = new Node(ramSize, RunState.Prelaunch);
            owner.Add(node);
            byte[] data = new byte[DataBytes];
            new Random(7).NextBytes(data);
            for (int page = 0; page < data.Length; page += 4096)
            {
                data[page] = (byte)(1 + page / 4096 % 255);
            }

            node.Memory.Write(0, data);
            using (node.Vm.Bql.Acquire())
            {
                node.Vm.Start().ThrowIfFailed();
            }

            return node;
        }

        /// <summary>A VM waiting in <c>inmigrate</c>.</summary>
        public static Node Destination(long ramSize, List<IDisposable> owner)
        {
            var node = new Node(ramSize, RunState.InMigrate);
            owner.Add(node);
            return node;
        }

        public void Dispose()
        {
            Coordinator.Dispose();
            _provider.Dispose();
        }
    }

    /// <summary>What one or more <see cref="MigrationTelemetry"/> objects measured and traced, by owner.</summary>
    private sealed class TelemetryRecorder : IDisposable
    {
        private readonly MigrationTelemetry[] _owners;
        private readonly ActivityListener _activities;
        private readonly Lock _gate = new();
        private readonly List<(MigrationTelemetry Owner, string Name, double Value, KeyValuePair<string, object?>[] Tags)> _measurements = [];
        private readonly List<(MigrationTelemetry Owner, Activity Span)> _spans = [];

        public TelemetryRecorder(params MigrationTelemetry[] owners)
        {
            _owners = owners;
            Meters = new MeterListener
            {
                InstrumentPublished = (instrument, listener) =>
                {
                    if (_owners.FirstOrDefault(o => o.Meter == instrument.Meter) is { } owner)
                    {
                        listener.EnableMeasurementEvents(instrument, owner);
                    }
                },
            };
            Meters.SetMeasurementEventCallback<long>((i, v, t, s) => Add(i, v, t, s));
            Meters.SetMeasurementEventCallback<int>((i, v, t, s) => Add(i, v, t, s));
            Meters.SetMeasurementEventCallback<double>((i, v, t, s) => Add(i, v, t, s));
            Meters.Start();
            _activities = new ActivityListener
            {
                ShouldListenTo = source => _owners.Any(o => o.ActivitySource == source),
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = activity =>
                {
                    lock (_gate)
                    {
                        _spans.Add((_owners.First(o => o.ActivitySource == activity.Source), activity));
                    }
                },
            };
            ActivitySource.AddActivityListener(_activities);
        }

        public MeterListener Meters { get; }

        public void Clear()
        {
            lock (_gate)
            {
                _measurements.Clear();
            }
        }

        public Measured Sum(Node node, string instrument)
        {
            lock (_gate)
            {
                return new Measured([.. _measurements.Where(m => m.Owner == node.Coordinator.Telemetry && m.Name == instrument)
                    .Select(m => (m.Value, m.Tags))]);
            }
        }

        public double[] Values(Node node, string instrument) => [.. Sum(node, instrument).Items.Select(i => i.Value)];

        public IReadOnlyList<Activity> Spans(Node node)
        {
            lock (_gate)
            {
                return [.. _spans.Where(s => s.Owner == node.Coordinator.Telemetry).Select(s => s.Span)];
            }
        }

        private void Add<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
            where T : struct
        {
            lock (_gate)
            {
                _measurements.Add(((MigrationTelemetry)state!, instrument.Name, Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture), tags.ToArray()));
            }
        }

        public void Dispose()
        {
            Meters.Dispose();
            _activities.Dispose();
        }
    }

    /// <summary>Measurements of one instrument.</summary>
    private sealed record Measured(IReadOnlyList<(double Value, KeyValuePair<string, object?>[] Tags)> Items)
    {
        public double Total => Items.Sum(i => i.Value);

        public double By(string tag, string value) =>
            Items.Where(i => i.Tags.Any(t => t.Key == tag && Equals(t.Value, value))).Sum(i => i.Value);

        public string[] Tags(string tag) =>
            [.. Items.SelectMany(i => i.Tags).Where(t => t.Key == tag).Select(t => (string)t.Value!).Distinct()];

        public Dictionary<string, double> Counts(string tag) =>
            Items.GroupBy(i => (string)i.Tags.Single(t => t.Key == tag).Value!).ToDictionary(g => g.Key, g => g.Sum(i => i.Value));
    }
}
