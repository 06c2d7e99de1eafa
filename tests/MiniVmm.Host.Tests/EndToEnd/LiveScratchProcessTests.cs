using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// A <c>ChunkedLiveState</c> device (<c>x-live-scratch</c>) end to end: migrated between two
/// <c>minivmm run</c> processes over TCP while its writer dirties it, and its sections decoded
/// by <c>minivmm analyze</c>.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class LiveScratchProcessTests : VmFixture
{
    private static readonly string[] Machine =
        ["-M", "none", "-m", "64M", "-nodefaults", "-display", "none", "-device", "x-live-scratch,id=l0,size-kib=4096,seed=7"];

    [Test]
    public async Task A_dirtied_scratch_memory_arrives_whole_and_analyze_decodes_its_sections()
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        // The destination stays paused (-S) after the load, so its own writer leaves the
        // memory as it arrived until it is continued.
        Vm destination = await StartAsync("dst", [.. Machine, "-S", "-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        Vm source = await StartAsync("src", Machine);
        await WaitForWritesAsync(source, 200);

        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("paused");

        // The source is stopped in postmigrate, its writer parked: its digest is the one at switchover.
        JsonNode sourceInfo = (await Info(source))!;
        JsonNode destinationInfo = (await Info(destination))!;
        Assert.Multiple(() =>
        {
            Assert.That(destinationInfo["digest"]!.GetValue<string>(), Is.EqualTo(sourceInfo["digest"]!.GetValue<string>()));
            Assert.That(destinationInfo["chunks"]!.GetValue<long>(), Is.EqualTo(1024));
            Assert.That(sourceInfo["writes"]!.GetValue<long>(), Is.GreaterThanOrEqualTo(200));
        });

        // Continued, the destination's writer carries on; stopped again, it is saved to a file.
        await destination.ReturnOfAsync("cont");
        long before = destinationInfo["writes"]!.GetValue<long>();
        await WaitForWritesAsync(destination, before + 50);
        await destination.ReturnOfAsync("stop");
        string file = Temp.File("scratch.bin");
        await destination.MigrateAsync($"file:{file}");
        await destination.WaitForCompletedAsync();

        await using MiniVmmProcess analyze = MiniVmmProcess.Start("analyze", file);
        int exit = await analyze.WaitForExitAsync();
        Assert.That(exit, Is.EqualTo(0), analyze.Stderr);
        var sections = JsonNode.Parse(analyze.Stdout)!["sections"]!.AsArray()
            .Where(s => s!["idstr"]?.GetValue<string>() == "l0/x-live-scratch").ToList();
        Assert.That(sections.Select(s => s!["type"]!.GetValue<string>()), Does.Contain("START").And.Contain("END"));
        Assert.That(sections.Select(s => s!["decoded"]?["format"]?.GetValue<string>()), Is.All.EqualTo("chunked"));
        Assert.That(sections.Sum(s => s!["decoded"]!["chunks"]!.GetValue<long>()), Is.GreaterThanOrEqualTo(1024));
    }

    private static async Task<JsonNode?> Info(Vm vm) =>
        (await vm.ReturnOfAsync("x-query-device", new() { ["id"] = "l0" }))?["info"];

    private static async Task WaitForWritesAsync(Vm vm, long writes)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (((await Info(vm))?["writes"]?.GetValue<long>() ?? 0) < writes)
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"the scratch writer did not reach {writes} writes");
            await Task.Delay(20);
        }
    }
}
