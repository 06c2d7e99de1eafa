using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using MiniVmm.Host.Demo;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// Faults injected between two hosts on one machine: the source runs in one network namespace,
/// the destination (behind the fault relay) in another, joined by a veth pair. For each fault and
/// phase the source must end failed or cancelled with a reason and run on, then migrate to a fresh
/// destination with consistent memory. A representative subset runs by default;
/// <c>MINIVMM_FAULT_MATRIX=full</c> (or <c>bench/fault-matrix.sh</c>) runs every fault × phase.
/// Each case prints one <c>outcome:</c> line, the figures in docs/reliability.md.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class FaultMatrixProcessTests : FaultFixture
{
    private const long StallMs = 3000;
    private const int DestinationPort = 4441;
    private const int RelayPort = 4442;
    private const int FreshPort = 4443;

    private NetworkNamespacePair? _pair;
    private readonly List<IAsyncDisposable> _extras = [];

    /// <summary>Where a fault hits.</summary>
    public enum FaultPhase
    {
        /// <summary>Before the stream starts: during connect and the header.</summary>
        Setup,

        /// <summary>While RAM is sent in passes.</summary>
        Precopy,

        /// <summary>While a VFIO device's stop-copy data is written (status <c>device</c>).</summary>
        Device,

        /// <summary>With the source VM stopped in <c>pre-switchover</c>, before the device state.</summary>
        Switchover,
    }

    /// <summary>What goes wrong.</summary>
    public enum InjectedFault
    {
        /// <summary><c>ip link set ... down</c> on the veth pair.</summary>
        LinkDown,

        /// <summary>The relay stops forwarding and reading (a hung destination).</summary>
        RelayStall,

        /// <summary>The relay resets both connections.</summary>
        RelayCut,

        /// <summary>SIGSTOP to the destination process.</summary>
        DestinationStopped,

        /// <summary>SIGKILL to the destination process.</summary>
        DestinationKilled,
    }

    /// <summary>The cases: a representative subset, or every pair with MINIVMM_FAULT_MATRIX=full.</summary>
    public static IEnumerable<TestCaseData> Cases()
    {
        bool full = Environment.GetEnvironmentVariable("MINIVMM_FAULT_MATRIX") == "full";
        (InjectedFault, FaultPhase)[] subset =
        [
            (InjectedFault.LinkDown, FaultPhase.Precopy),
            (InjectedFault.RelayStall, FaultPhase.Switchover),
            (InjectedFault.DestinationStopped, FaultPhase.Device),
            (InjectedFault.DestinationKilled, FaultPhase.Setup),
            (InjectedFault.RelayCut, FaultPhase.Precopy),
        ];
        IEnumerable<(InjectedFault, FaultPhase)> cases = full
            ? Enum.GetValues<InjectedFault>().SelectMany(f => Enum.GetValues<FaultPhase>().Select(p => (f, p)))
            : subset;
        return cases.Select(c => new TestCaseData(c.Item1, c.Item2));
    }

    [TearDown]
    public async Task RemoveNamespaces()
    {
        for (int i = _extras.Count - 1; i >= 0; i--)
        {
            await _extras[i].DisposeAsync();
        }

        _extras.Clear();
        _pair?.Dispose();
        _pair = null;
    }

    [TestCaseSource(nameof(Cases))]
    public async Task The_source_fails_with_a_reason_runs_on_and_then_migrates_consistently(InjectedFault fault, FaultPhase phase)
    {
        NetworkNamespacePair pair = _pair = NetworkNamespacePair.CreateOrIgnore();
        string[] devices = phase == FaultPhase.Device ? ["-device", "vfio-emu,id=gpu0,state-size=64,seed=3"] : [];
        Vm destination = await StartInNamespaceAsync(pair.Destination, "dst1", [.. Machine, .. devices, "-incoming", "defer"]);
        await destination.SetParametersAsync(new() { ["x-stall-timeout"] = StallMs });
        await destination.ReturnOfAsync("migrate-incoming", new() { ["uri"] = $"tcp:127.0.0.1:{DestinationPort}" });
        FaultRelayProcess relay = Track(await FaultRelayProcess.StartAsync(
            pair.Destination, $"{NetworkNamespacePair.DestinationAddress}:{RelayPort}", $"127.0.0.1:{DestinationPort}"));
        Vm source = await StartInNamespaceAsync(pair.Source, "src", [.. Machine, .. devices]);
        await WaitForGuestToFillAsync(source);
        await source.SetParametersAsync(new()
        {
            ["x-stall-timeout"] = StallMs,
            ["max-bandwidth"] = phase == FaultPhase.Precopy ? 16L << 20 : 1L << 30,
        });
        if (phase is FaultPhase.Device or FaultPhase.Switchover)
        {
            await SetCapabilitiesAsync(source, "pause-before-switchover");
        }

        string uri = $"tcp:{NetworkNamespacePair.DestinationAddress}:{RelayPort}";
        var clock = new Stopwatch();
        switch (phase)
        {
            case FaultPhase.Setup:
                await InjectAsync(fault, pair, destination, relay);
                clock.Start();
                await source.MigrateAsync(uri);
                break;
            case FaultPhase.Precopy:
                await source.MigrateAsync(uri);
                await source.WaitForTransferredAsync(2 << 20);
                await InjectAsync(fault, pair, destination, relay);
                clock.Start();
                break;
            case FaultPhase.Switchover:
                await source.MigrateAsync(uri);
                await source.WaitForMigrationStatusAsync("pre-switchover");
                await InjectAsync(fault, pair, destination, relay);
                clock.Start();
                await source.ReturnOfAsync("migrate-continue", new() { ["state"] = "pre-switchover" });
                break;
            case FaultPhase.Device:
                await source.MigrateAsync(uri);
                await source.WaitForMigrationStatusAsync("pre-switchover");
                await relay.InjectAsync("throttle:16000000"); // 64 MiB of device state: ~4 s in status device
                await source.ReturnOfAsync("migrate-continue", new() { ["state"] = "pre-switchover" });
                await Task.Delay(500);
                await InjectAsync(fault, pair, destination, relay);
                clock.Start();
                break;
        }

        JsonObject end = await AssertFailedAndRunningAsync(source);
        string reason = end["error-desc"]?.GetValue<string>() ?? end["status"]!.GetValue<string>();
        TestContext.Out.WriteLine(string.Create(
            CultureInfo.InvariantCulture, $"outcome: {fault} | {phase} | {end["status"]} after {clock.ElapsedMilliseconds} ms | {reason}"));

        await ClearAsync(fault, pair, destination);
        Vm fresh = await StartInNamespaceAsync(
            pair.Destination, "dst2", [.. Machine, .. devices, "-incoming", $"tcp:{NetworkNamespacePair.DestinationAddress}:{FreshPort}"]);
        await fresh.WaitUntilListeningAsync();
        if (phase is FaultPhase.Device or FaultPhase.Switchover)
        {
            await source.ReturnOfAsync("migrate-set-capabilities", new()
            {
                ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "pause-before-switchover", ["state"] = false }),
            });
        }

        await MigrateAndCheckConsistentAsync(source, fresh, $"tcp:{NetworkNamespacePair.DestinationAddress}:{FreshPort}");
    }

    [Test]
    public void A_namespace_pair_carries_traffic_only_while_its_link_is_up_and_is_gone_once_disposed()
    {
        NetworkNamespacePair pair = NetworkNamespacePair.CreateOrIgnore();
        string source = pair.Source;
        string destination = pair.Destination;
        try
        {
            Assert.That(NetworkNamespacePair.Exists(source) && NetworkNamespacePair.Exists(destination), Is.True);
            Assert.That(pair.CanReach(NetworkNamespacePair.DestinationAddress), Is.True, "link up");
            pair.SetLink(up: false);
            Assert.That(pair.CanReach(NetworkNamespacePair.DestinationAddress), Is.False, "link down");
        }
        finally
        {
            pair.Dispose();
            pair.Dispose();
        }

        Assert.That(NetworkNamespacePair.Exists(source) || NetworkNamespacePair.Exists(destination), Is.False, "both namespaces removed");
    }

    [Test]
    public async Task With_the_rust_harness_a_destination_killed_in_precopy_loses_no_harness_write_on_the_next_migration()
    {
        NetworkNamespacePair pair = _pair = NetworkNamespacePair.CreateOrIgnore();
        string[] machine = ["-M", "none", "-m", "64M", "-nodefaults", "-display", "none"];
        Vm doomed = await StartWithHarnessAsync(pair.Destination, "dst1", [.. machine, "-incoming", $"tcp:{NetworkNamespacePair.DestinationAddress}:{DestinationPort}"]);
        Vm source = await StartWithHarnessAsync(pair.Source, "src", machine, "--rate", "20000");
        await source.SetParametersAsync(new() { ["x-stall-timeout"] = StallMs, ["max-bandwidth"] = 8L << 20 });

        await source.MigrateAsync($"tcp:{NetworkNamespacePair.DestinationAddress}:{DestinationPort}");
        await source.WaitForTransferredAsync(2 << 20);
        await doomed.Process.SignalAsync("KILL");
        JsonObject end = await AssertFailedAndRunningAsync(source);
        TestContext.Out.WriteLine($"outcome: DestinationKilled (harness) | Precopy | {end.ToJsonString()}");

        Vm destination = await StartWithHarnessAsync(pair.Destination, "dst2", [.. machine, "-incoming", $"tcp:{NetworkNamespacePair.DestinationAddress}:{FreshPort}"]);
        await destination.WaitUntilListeningAsync();
        await source.SetParametersAsync(new() { ["max-bandwidth"] = 256L << 20 });
        await source.MigrateAsync($"tcp:{NetworkNamespacePair.DestinationAddress}:{FreshPort}");
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");
        await Task.Delay(200);
        await destination.ReturnOfAsync("stop");
        HarnessGuestPosition position = HarnessGuestPosition.From(await destination.ReturnOfAsync("x-query-guest-harness", new() { ["state"] = true }));
        byte[] ram = await destination.ReadRamAsync(0, Ram, Temp.File("dst2.img"));
        Assert.That(position.Mismatch(ram), Is.Null, "the destination's RAM against its harness's own position");
    }

    [Test]
    public async Task Twenty_failed_migrations_in_a_row_leak_no_descriptors_threads_or_memory()
    {
        NetworkNamespacePair pair = _pair = NetworkNamespacePair.CreateOrIgnore();
        string address = NetworkNamespacePair.DestinationAddress;
        Track(await FaultRelayProcess.StartAsync(pair.Destination, $"{address}:{RelayPort}", null, "--cut-after", "1048576"));
        Track(await FaultRelayProcess.StartAsync(pair.Destination, $"{address}:{FreshPort}", null, "--stall-after", "1048576"));
        Vm source = await StartInNamespaceAsync(pair.Source, "src", Machine);
        await WaitForGuestToFillAsync(source);
        await source.SetParametersAsync(new() { ["x-stall-timeout"] = 300, ["max-bandwidth"] = 1L << 30 });

        ProcessFigures? warm = null;
        var reasons = new HashSet<string>();
        for (int round = 1; round <= 20; round++)
        {
            // Odd rounds: the connection is reset after 1 MiB; even rounds: it hangs after 1 MiB (the watchdog).
            int port = round % 2 == 1 ? RelayPort : FreshPort;
            await source.MigrateAsync($"tcp:{address}:{port}");
            JsonObject end = await AssertFailedAndRunningAsync(source);
            reasons.Add(end["error-desc"]!.GetValue<string>().Split(':')[0]);
            if (round == 2)
            {
                warm = ProcessFigures.Of(source.Process.Pid);
            }
        }

        ProcessFigures after = ProcessFigures.Of(source.Process.Pid);
        TestContext.Out.WriteLine($"outcome: 20 failed migrations: after round 2 {warm}, after round 20 {after}; reasons: {string.Join(" / ", reasons)}");
        Assert.Multiple(() =>
        {
            Assert.That(after.Descriptors - warm!.Value.Descriptors, Is.LessThanOrEqualTo(4), "descriptors");
            Assert.That(after.Threads - warm.Value.Threads, Is.LessThanOrEqualTo(4), "threads");
            Assert.That(after.RssKiB - warm.Value.RssKiB, Is.LessThanOrEqualTo(96 * 1024), "VmRSS (KiB)");
        });
    }

    private T Track<T>(T disposable)
        where T : IAsyncDisposable
    {
        _extras.Add(disposable);
        return disposable;
    }

    private async Task<Vm> StartWithHarnessAsync(string networkNamespace, string name, string[] arguments, params string[] harnessArguments)
    {
        string socket = Temp.File(name + ".harness");
        Vm vm = await StartInNamespaceAsync(networkNamespace, name, [.. arguments, "-guest", $"harness,socket={socket}"], _ =>
        {
            Track(HarnessProcess.Start(socket, harnessArguments));
            return Task.CompletedTask;
        });
        var clock = Stopwatch.StartNew();
        while ((await vm.ReturnOfAsync("x-query-guest-harness"))?["connected"]?.GetValue<bool>() != true)
        {
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), $"{name}: no harness connected");
            await Task.Delay(20);
        }

        return vm;
    }

    private static async Task InjectAsync(InjectedFault fault, NetworkNamespacePair pair, Vm destination, FaultRelayProcess relay)
    {
        switch (fault)
        {
            case InjectedFault.LinkDown:
                pair.SetLink(up: false);
                break;
            case InjectedFault.RelayStall:
                await relay.InjectAsync("stall");
                break;
            case InjectedFault.RelayCut:
                await relay.InjectAsync("cut");
                break;
            case InjectedFault.DestinationStopped:
                await destination.Process.SignalAsync("STOP");
                break;
            case InjectedFault.DestinationKilled:
                await destination.Process.SignalAsync("KILL");
                break;
        }
    }

    private static async Task ClearAsync(InjectedFault fault, NetworkNamespacePair pair, Vm destination)
    {
        if (fault == InjectedFault.LinkDown)
        {
            pair.SetLink(up: true);
        }

        if (!destination.Process.HasExited)
        {
            await destination.Process.SignalAsync("KILL");
        }
    }

    /// <summary>What /proc says about a process: open descriptors, threads, resident memory.</summary>
    private readonly record struct ProcessFigures(int Descriptors, int Threads, long RssKiB)
    {
        public static ProcessFigures Of(int pid)
        {
            int descriptors = Directory.GetFiles($"/proc/{pid}/fd").Length;
            string[] status = File.ReadAllLines($"/proc/{pid}/status");
            int threads = int.Parse(Field(status, "Threads:"), CultureInfo.InvariantCulture);
            long rss = long.Parse(Field(status, "VmRSS:").Split(' ')[0], CultureInfo.InvariantCulture);
            return new ProcessFigures(descriptors, threads, rss);
        }

        public override string ToString() => $"{Descriptors} fds, {Threads} threads, VmRSS {RssKiB} KiB";

        private static string Field(string[] status, string name) =>
            status.First(line => line.StartsWith(name, StringComparison.Ordinal))[name.Length..].Trim();
    }
}
