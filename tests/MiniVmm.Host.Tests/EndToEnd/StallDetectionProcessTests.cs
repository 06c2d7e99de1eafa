using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// <c>x-stall-timeout</c> with real processes over TCP loopback: a destination that stops
/// reading (frozen with SIGSTOP, or behind the relay's stall mode) fails the source, which runs
/// on; a source that stops sending fails the destination; 0 turns detection off.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class StallDetectionProcessTests : FaultFixture
{
    // Long enough that a loaded 2-core machine does not trip it before the fault (1.5 s did, once).
    private const long StallMs = 3000;

    [Test]
    public async Task A_frozen_destination_fails_the_source_within_about_the_timeout_and_the_source_runs_on()
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm frozen = await StartAsync("dst1", [.. Machine, "-incoming", uri]);
        await frozen.WaitUntilListeningAsync();
        Vm source = await StartAsync("src", Machine);
        await WaitForGuestToFillAsync(source);
        await source.SetParametersAsync(new() { ["x-stall-timeout"] = StallMs, ["max-bandwidth"] = 16L << 20 });
        JsonNode? parameters = await source.ReturnOfAsync("query-migrate-parameters");
        Assert.That(parameters?["x-stall-timeout"]?.GetValue<long>(), Is.EqualTo(StallMs), parameters?.ToJsonString());

        await source.MigrateAsync(uri);
        await source.WaitForTransferredAsync(2 << 20);
        await frozen.Process.SignalAsync("STOP");
        var clock = Stopwatch.StartNew();
        JsonObject end = await AssertFailedAndRunningAsync(source, "the destination stopped taking the migration stream");
        TestContext.Out.WriteLine($"failed {clock.ElapsedMilliseconds} ms after SIGSTOP: {end.ToJsonString()}");

        Assert.That(end["error-desc"]?.GetValue<string>(), Does.Contain("x-stall-timeout").And.Contain("at stream offset"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromMilliseconds(StallMs) + TimeSpan.FromSeconds(20)),
            "failed by the 1.5 s stall limit, long before TCP would give up");
        await frozen.Process.SignalAsync("KILL");

        string second = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartAsync("dst2", [.. Machine, "-incoming", second]);
        await destination.WaitUntilListeningAsync();
        await MigrateAndCheckConsistentAsync(source, destination, second);
    }

    [Test]
    public async Task A_relay_that_stalls_fails_the_source_and_the_destination_each_naming_the_other_side()
    {
        int destinationPort = GuestRam.FreeTcpPort();
        int relayPort = GuestRam.FreeTcpPort();
        Vm destination = await StartAsync("dst", [.. Machine, "-incoming", "defer"]);
        await destination.SetParametersAsync(new() { ["x-stall-timeout"] = StallMs });
        await destination.ReturnOfAsync("migrate-incoming", new() { ["uri"] = $"tcp:127.0.0.1:{destinationPort}" });
        await using FaultRelayProcess relay = await FaultRelayProcess.StartAsync(null, $"127.0.0.1:{relayPort}", $"127.0.0.1:{destinationPort}");
        Vm source = await StartAsync("src", Machine);
        await source.SetParametersAsync(new() { ["x-stall-timeout"] = StallMs, ["max-bandwidth"] = 16L << 20 });

        await source.MigrateAsync($"tcp:127.0.0.1:{relayPort}");
        await source.WaitForTransferredAsync(2 << 20);
        await relay.InjectAsync("stall");

        JsonObject end = await AssertFailedAndRunningAsync(source, "the destination stopped taking the migration stream");
        TestContext.Out.WriteLine($"source: {end.ToJsonString()}");
        Assert.That(await destination.Process.WaitForExitAsync(), Is.EqualTo(1), "the destination's load failed");
        Assert.That(destination.Process.Stderr, Does.Contain("the source stopped sending the migration stream"));
    }

    [Test]
    public async Task A_black_hole_is_caught_by_the_destination_and_with_return_path_the_source_fails_with_its_reason()
    {
        int destinationPort = GuestRam.FreeTcpPort();
        int relayPort = GuestRam.FreeTcpPort();
        Vm destination = await StartAsync("dst", [.. Machine, "-incoming", "defer"]);
        await destination.SetParametersAsync(new() { ["x-stall-timeout"] = StallMs });
        await SetCapabilitiesAsync(destination, "return-path");
        await destination.ReturnOfAsync("migrate-incoming", new() { ["uri"] = $"tcp:127.0.0.1:{destinationPort}" });
        await using FaultRelayProcess relay = await FaultRelayProcess.StartAsync(null, $"127.0.0.1:{relayPort}", $"127.0.0.1:{destinationPort}");
        Vm source = await StartAsync("src", Machine);
        await SetCapabilitiesAsync(source, "return-path");
        await source.SetParametersAsync(new() { ["x-stall-timeout"] = StallMs, ["max-bandwidth"] = 16L << 20 });

        await source.MigrateAsync($"tcp:127.0.0.1:{relayPort}");
        await source.WaitForTransferredAsync(2 << 20);
        await relay.InjectAsync("blackhole");
        var clock = Stopwatch.StartNew();

        JsonObject end = await AssertFailedAndRunningAsync(source);
        TestContext.Out.WriteLine($"source failed {clock.ElapsedMilliseconds} ms after the black hole opened: {end.ToJsonString()}");
        Assert.That(await destination.Process.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(destination.Process.Stderr, Does.Contain("the source stopped sending the migration stream"));
        Assert.That(end["error-desc"]?.GetValue<string>(), Does.Not.Contain("the destination stopped taking"),
            "the source's kernel saw every byte acked: only the destination's answer on the return path can end it");
    }

    [Test]
    public async Task A_source_that_stops_sending_mid_stream_fails_the_incoming_side_and_the_source_runs_on_after()
    {
        int port = GuestRam.FreeTcpPort();
        Vm destination = await StartAsync("dst", [.. Machine, "-incoming", "defer"]);
        await destination.SetParametersAsync(new() { ["x-stall-timeout"] = StallMs });
        await destination.ReturnOfAsync("migrate-incoming", new() { ["uri"] = $"tcp:127.0.0.1:{port}" });
        Vm source = await StartAsync("src", Machine);
        await source.SetParametersAsync(new() { ["max-bandwidth"] = 16L << 20 });

        await source.MigrateAsync($"tcp:127.0.0.1:{port}");
        await source.WaitForTransferredAsync(2 << 20);
        await source.Process.SignalAsync("STOP");
        int code = await destination.Process.WaitForExitAsync();
        await source.Process.SignalAsync("CONT");

        Assert.That(code, Is.EqualTo(1), destination.Process.Stderr);
        Assert.That(destination.Process.Stderr, Does.Contain("the source stopped sending the migration stream").And.Contain("at stream offset"));
        JsonObject end = await AssertFailedAndRunningAsync(source);
        TestContext.Out.WriteLine($"source after SIGCONT: {end.ToJsonString()}");
    }

    [Test]
    public async Task Zero_turns_stall_detection_off_and_the_migration_completes_once_the_destination_runs_again()
    {
        int port = GuestRam.FreeTcpPort();
        Vm destination = await StartAsync("dst", [.. Machine, "-incoming", "defer"]);
        await destination.SetParametersAsync(new() { ["x-stall-timeout"] = 0 });
        await destination.ReturnOfAsync("migrate-incoming", new() { ["uri"] = $"tcp:127.0.0.1:{port}" });
        Vm source = await StartAsync("src", Machine);
        await WaitForGuestToFillAsync(source);
        await source.SetParametersAsync(new() { ["x-stall-timeout"] = 0, ["max-bandwidth"] = 16L << 20 });

        await source.MigrateAsync($"tcp:127.0.0.1:{port}");
        await source.WaitForTransferredAsync(2 << 20);
        await destination.Process.SignalAsync("STOP");
        await Task.Delay(TimeSpan.FromMilliseconds(StallMs * 3 / 2)); // well past the limit the other tests use
        JsonObject during = await source.QueryMigrateAsync();
        await destination.Process.SignalAsync("CONT");

        Assert.That(during["status"]?.GetValue<string>(), Is.EqualTo("active"), during.ToJsonString());
        await source.SetParametersAsync(new() { ["max-bandwidth"] = 1L << 30, ["downtime-limit"] = 30000 });
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.ReturnOfAsync("stop");
        byte[] ram = await destination.ReadRamAsync(0, Ram, Temp.File("dst-ram.img"));
        Assert.That(GuestRam.CheckIncrementingGuest(ram, out _), Is.Null, "the destination's memory after the pause");
    }
}
