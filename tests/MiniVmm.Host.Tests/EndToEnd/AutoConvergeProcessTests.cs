using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// Auto-converge on real processes, with a guest that certainly outruns the link: 32 MiB of RAM,
/// the built-in guest writing 8192 pages/s (32 MiB/s, every page of its RAM again each second)
/// and max-bandwidth 16 MiB/s. A pass takes two seconds, in which the guest dirties all its RAM
/// again, so without a throttle the pending data never falls under the threshold (16 MiB/s ×
/// 300 ms = 4.8 MiB); with <c>auto-converge</c> the computed throttle must bring it there in a
/// few passes.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class AutoConvergeProcessTests : VmFixture
{
    private const long Ram = 32L << 20;
    private const long Bandwidth = 16L << 20;
    private static readonly string[] Machine = ["-M", "none", "-m", "32M", "-nodefaults", "-display", "none", "-guest", "dirty,rate=8192"];

    [Test]
    public async Task With_auto_converge_a_guest_that_outruns_the_link_converges_in_a_few_passes()
    {
        (Vm source, Vm destination) = await StartPairAsync(autoConverge: true);

        int highestThrottle = 0;
        var clock = Stopwatch.StartNew();
        JsonObject info;
        while (true)
        {
            info = await source.QueryMigrateAsync();
            highestThrottle = Math.Max(highestThrottle, info["cpu-throttle-percentage"]?.GetValue<int>() ?? 0);
            if (info["status"]?.GetValue<string>() is "completed" or "failed" or "cancelled")
            {
                break;
            }

            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), $"no convergence in 60 s: {info.ToJsonString()}");
            await Task.Delay(50);
        }

        long passes = info["ram"]?["dirty-sync-count"]?.GetValue<long>() ?? -1;
        long sent = info["ram"]?["transferred"]?.GetValue<long>() ?? -1;
        TestContext.Out.WriteLine($"completed in {clock.ElapsedMilliseconds} ms, {passes} passes, {sent >> 20} MiB sent, highest throttle {highestThrottle} %: {info.ToJsonString()}");
        Assert.Multiple(() =>
        {
            Assert.That(info["status"]?.GetValue<string>(), Is.EqualTo("completed"), info.ToJsonString());
            Assert.That(highestThrottle, Is.GreaterThan(0), "the guest was throttled");
            Assert.That(passes, Is.LessThanOrEqualTo(10), "a few passes, not dozens");
        });

        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");
        await AssertConsistentAfterStopAsync(destination);
        Assert.That((await source.QueryMigrateAsync())["cpu-throttle-percentage"], Is.Null, "no throttle is reported once the migration ended");
    }

    [Test]
    public async Task Without_auto_converge_the_same_guest_does_not_converge()
    {
        (Vm source, _) = await StartPairAsync(autoConverge: false);

        // Three full passes at least: each finds the whole RAM dirty again.
        var clock = Stopwatch.StartNew();
        JsonObject info;
        do
        {
            await Task.Delay(200);
            info = await source.QueryMigrateAsync();
            Assert.That(info["status"]?.GetValue<string>(), Is.EqualTo("active"), $"after {clock.ElapsedMilliseconds} ms: {info.ToJsonString()}");
        }
        while ((info["ram"]?["dirty-sync-count"]?.GetValue<long>() ?? 0) < 4 && clock.Elapsed < TimeSpan.FromSeconds(30));

        long remaining = info["ram"]?["remaining"]?.GetValue<long>() ?? 0;
        TestContext.Out.WriteLine($"after {clock.ElapsedMilliseconds} ms still active: {info.ToJsonString()}");
        Assert.Multiple(() =>
        {
            Assert.That(info["ram"]?["dirty-sync-count"]?.GetValue<long>(), Is.GreaterThanOrEqualTo(4), "passes went by");
            Assert.That(info["cpu-throttle-percentage"]?.GetValue<int>() ?? 0, Is.Zero, "nothing throttles the guest");
            Assert.That(remaining, Is.GreaterThan(Bandwidth * 300 / 1000), "the pending data stays above the threshold");
        });

        await source.ReturnOfAsync("migrate_cancel");
        JsonObject end = await source.WaitForMigrationEndAsync();
        Assert.That(end["status"]?.GetValue<string>(), Is.EqualTo("cancelled"));
        await source.WaitForRunStateAsync("running");
    }

    private async Task<(Vm Source, Vm Destination)> StartPairAsync(bool autoConverge)
    {
        int port = GuestRam.FreeTcpPort();
        string uri = $"tcp:127.0.0.1:{port}";
        Vm destination = await StartAsync("dst", [.. Machine, "-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        Vm source = await StartAsync("src", Machine);

        // Every page written once (the last one is non-zero), so that passes carry data pages
        // from the start, not zero pages the guest has not reached yet.
        var clock = Stopwatch.StartNew();
        while ((await source.ReadRamAsync(Ram - GuestRam.PageSize, 1, Temp.File("probe.img")))[0] == 0)
        {
            Assert.That(clock.Elapsed, Is.LessThan(Vm.LongWait), "the guest never reached its last page");
            await Task.Delay(50);
        }

        await source.SetParametersAsync(new() { ["max-bandwidth"] = Bandwidth, ["downtime-limit"] = 300 });
        if (autoConverge)
        {
            await source.ReturnOfAsync("migrate-set-capabilities", new JsonObject
            {
                ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "auto-converge", ["state"] = true }),
            });
        }

        await source.MigrateAsync(uri);
        return (source, destination);
    }

    private async Task AssertConsistentAfterStopAsync(Vm vm)
    {
        await vm.ReturnOfAsync("stop");
        await vm.WaitForRunStateAsync("paused");
        byte[] ram = await vm.ReadRamAsync(0, Ram, Temp.File($"{vm.Name}-ram.img"));
        string? problem = GuestRam.CheckIncrementingGuest(ram, out int steps);
        Assert.That(problem, Is.Null, $"{vm.Name}: the guest's memory is not one consistent instant of its loop ({steps} steps)");
    }
}
