using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace MiniVmm.Host.Demo;

/// <summary>
/// <c>minivmm demo</c>: starts a destination and a source VM as child processes (1 GiB of RAM,
/// the source running the dirtying guest, two emulated VFIO devices with P2P and precopy doing
/// DMA), migrates the source live over TCP loopback with a progress display, then checks on the
/// destination that guest memory is consistent the way QEMU's migration-test does, that the
/// guest runs there and that each device's state arrived exactly, and prints a summary. Exit
/// code 0 only if every check passed.
/// </summary>
public sealed class LiveMigrationDemo(DemoSettings settings)
{
    /// <summary>The emulated VFIO devices both VMs get: P2P and PRE_COPY, with internal state that changes while they run.</summary>
    private static readonly (string Id, int StateMiB)[] VfioDevices = [("gpu0", 16), ("nic0", 8)];

    private static readonly TimeSpan MigrationTimeout = TimeSpan.FromMinutes(5);

    /// <summary>Runs the demo; returns the process exit code.</summary>
    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        DirectoryInfo directory = Directory.CreateTempSubdirectory("minivmm-demo-");
        try
        {
            return await RunInAsync(directory.FullName, cancellation).ConfigureAwait(false);
        }
        catch (Exception error) when (error is IOException or TimeoutException or InvalidOperationException or OperationCanceledException)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]demo failed:[/] {error.Message}");
            return 1;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private async Task<int> RunInAsync(string directory, CancellationToken cancellation)
    {
        int port = FreeLoopbackPort();
        string ram = settings.RamSize;
        AnsiConsole.MarkupLineInterpolated($"[bold]MiniVmm live migration demo[/]: {ram} of guest RAM, dirtying guest at {DescribeRate(settings.GuestPagesPerSecond)}, TCP 127.0.0.1:{port}");

        string[] machine =
        [
            "-M", "none", "-m", ram, "-nodefaults", "-display", "none", "-guest", $"dirty,rate={settings.GuestPagesPerSecond}",
            .. VfioDevices.SelectMany(d => new[] { "-device", $"vfio-emu,id={d.Id},p2p=on,precopy=on,state-size={d.StateMiB}" }),
        ];
        await using DemoVm destination = await DemoVm.StartAsync(
            "destination", directory, [.. machine, "-incoming", $"tcp:127.0.0.1:{port}"], cancellation).ConfigureAwait(false);
        await using DemoVm source = await DemoVm.StartAsync("source", directory, machine, cancellation).ConfigureAwait(false);

        // Let the guest run a little so that memory is really being written when the migration starts.
        await Task.Delay(TimeSpan.FromMilliseconds(500), cancellation).ConfigureAwait(false);
        // return-path: the source completes only once the destination says it loaded everything;
        // switchover-ack: no switchover before the destination's precopy devices have their
        // initial data. Both sides need switchover-ack, as in QEMU.
        foreach (DemoVm vm in new[] { source, destination })
        {
            await vm.Qmp.ReturnOfAsync("migrate-set-capabilities", new JsonObject
            {
                ["capabilities"] = new JsonArray(
                    new JsonObject { ["capability"] = "events", ["state"] = true },
                    new JsonObject { ["capability"] = "return-path", ["state"] = true },
                    new JsonObject { ["capability"] = "switchover-ack", ["state"] = true }),
            }, cancellation).ConfigureAwait(false);
        }

        await source.Qmp.ReturnOfAsync("migrate-set-parameters", new JsonObject
        {
            ["max-bandwidth"] = settings.MaxBandwidth,
            ["downtime-limit"] = settings.DowntimeLimitMs,
        }, cancellation).ConfigureAwait(false);
        await source.Qmp.ReturnOfAsync("migrate", new JsonObject { ["uri"] = $"tcp:127.0.0.1:{port}" }, cancellation).ConfigureAwait(false);

        JsonObject final = await ShowProgressAsync(source, cancellation).ConfigureAwait(false);
        string status = final["status"]?.GetValue<string>() ?? "?";
        if (status != "completed")
        {
            AnsiConsole.MarkupLineInterpolated($"[red]migration {status}[/]: {final["error-desc"]?.GetValue<string>() ?? ""} (logs: {source.LogPath}, {destination.LogPath})");
            return 1;
        }

        bool destinationDone = await WaitForDestinationAsync(destination, cancellation).ConfigureAwait(false);
        string sourceState = await RunStateAsync(source, cancellation).ConfigureAwait(false);
        string destinationState = await RunStateAsync(destination, cancellation).ConfigureAwait(false);

        // The guest must be running on the destination: it keeps writing pages there.
        JsonNode? before = await destination.Qmp.ReturnOfAsync("x-check-guest-memory", null, cancellation).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromMilliseconds(300), cancellation).ConfigureAwait(false);
        await destination.Qmp.ReturnOfAsync("stop", null, cancellation).ConfigureAwait(false);
        JsonNode? check = await destination.Qmp.ReturnOfAsync("x-check-guest-memory", null, cancellation).ConfigureAwait(false);
        bool guestRuns = Progress(check) > Progress(before);
        bool consistent = check?["consistent"]?.GetValue<bool>() == true;
        var devices = new List<(string Id, bool Equal, string Detail)>();
        foreach ((string id, int stateMiB) in VfioDevices)
        {
            JsonNode? sent = await source.Qmp.ReturnOfAsync("x-query-vfio", new JsonObject { ["id"] = id }, cancellation).ConfigureAwait(false);
            JsonNode? received = await destination.Qmp.ReturnOfAsync("x-query-vfio", new JsonObject { ["id"] = id }, cancellation).ConfigureAwait(false);
            string? digest = sent?["digest"]?.GetValue<string>();
            bool equal = digest is not null && digest == received?["loaded-digest"]?.GetValue<string>();
            devices.Add((id, equal,
                $"{stateMiB} MiB state, {Bytes(sent?["bytes-transferred"]?.GetValue<long>() ?? 0)} sent, " +
                $"{(equal ? "state identical" : "STATE DIFFERS")} (sha256 {digest?[..12]}…), now {received?["device-state"]?.GetValue<string>()}"));
        }

        PrintSummary(final, destinationDone, sourceState, destinationState, guestRuns, check, devices);
        bool passed = destinationDone && consistent && guestRuns && sourceState == "postmigrate" && devices.All(d => d.Equal);
        AnsiConsole.MarkupLine(passed ? "[green bold]demo passed[/]" : "[red bold]demo FAILED[/]");
        return passed ? 0 : 1;
    }

    private static async Task<JsonObject> ShowProgressAsync(DemoVm source, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        if (AnsiConsole.Profile.Capabilities.Interactive)
        {
            JsonObject last = [];
            await AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .StartAsync(async context =>
                {
                    ProgressTask task = context.AddTask("setup", maxValue: 1);
                    while (true)
                    {
                        last = await QueryAsync(source, cancellation).ConfigureAwait(false);
                        Describe(last, out string text, out double done, out double total);
                        task.MaxValue = Math.Max(1, total);
                        task.Value = Math.Min(done, task.MaxValue);
                        task.Description = Markup.Escape(text);
                        if (IsFinal(last) || clock.Elapsed > MigrationTimeout)
                        {
                            task.Value = task.MaxValue;
                            break;
                        }

                        await Task.Delay(100, cancellation).ConfigureAwait(false);
                    }
                }).ConfigureAwait(false);
            return last;
        }

        // Not a terminal (CI, a pipe): one line whenever the pass changes, and every second.
        long lastPass = -1;
        TimeSpan lastLine = TimeSpan.Zero;
        while (true)
        {
            JsonObject info = await QueryAsync(source, cancellation).ConfigureAwait(false);
            long pass = info["ram"]?["dirty-sync-count"]?.GetValue<long>() ?? 0;
            if (pass != lastPass || clock.Elapsed - lastLine >= TimeSpan.FromSeconds(1) || IsFinal(info))
            {
                Describe(info, out string text, out _, out _);
                AnsiConsole.WriteLine($"  [{clock.Elapsed.TotalSeconds,6:F2} s] {text}");
                lastPass = pass;
                lastLine = clock.Elapsed;
            }

            if (IsFinal(info) || clock.Elapsed > MigrationTimeout)
            {
                return info;
            }

            await Task.Delay(100, cancellation).ConfigureAwait(false);
        }
    }

    private static async Task<JsonObject> QueryAsync(DemoVm vm, CancellationToken cancellation) =>
        (await vm.Qmp.ReturnOfAsync("query-migrate", null, cancellation).ConfigureAwait(false))?.AsObject() ?? [];

    private static bool IsFinal(JsonObject info) =>
        info["status"]?.GetValue<string>() is "completed" or "failed" or "cancelled";

    private static void Describe(JsonObject info, out string text, out double done, out double total)
    {
        string status = info["status"]?.GetValue<string>() ?? "none";
        JsonNode? ram = info["ram"];
        long transferred = ram?["transferred"]?.GetValue<long>() ?? 0;
        long remaining = ram?["remaining"]?.GetValue<long>() ?? 0;
        long dirtyRate = ram?["dirty-pages-rate"]?.GetValue<long>() ?? 0;
        long pass = ram?["dirty-sync-count"]?.GetValue<long>() ?? 0;
        total = ram?["total"]?.GetValue<long>() ?? 1;
        done = Math.Max(0, total - remaining);
        text = $"{status,-9} pass {pass,3}  sent {Bytes(transferred),10}  left {Bytes(remaining),10}  dirty {dirtyRate,7} pages/s";
    }

    private static async Task<bool> WaitForDestinationAsync(DemoVm destination, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            JsonObject info = await QueryAsync(destination, cancellation).ConfigureAwait(false);
            string? status = info["status"]?.GetValue<string>();
            if (status is "completed" or "failed")
            {
                return status == "completed";
            }

            await Task.Delay(50, cancellation).ConfigureAwait(false);
        }

        return false;
    }

    private static async Task<string> RunStateAsync(DemoVm vm, CancellationToken cancellation) =>
        (await vm.Qmp.ReturnOfAsync("query-status", null, cancellation).ConfigureAwait(false))?["status"]?.GetValue<string>() ?? "?";

    private static long Progress(JsonNode? check) => check?["guest-pages-written"]?.GetValue<long>() ?? 0;

    private static void PrintSummary(
        JsonObject info, bool destinationDone, string sourceState, string destinationState, bool guestRuns, JsonNode? check,
        IReadOnlyList<(string Id, bool Equal, string Detail)> devices)
    {
        JsonNode? ram = info["ram"];
        long total = info["total-time"]?.GetValue<long>() ?? 0;
        long setup = info["setup-time"]?.GetValue<long>() ?? 0;
        long transferred = ram?["transferred"]?.GetValue<long>() ?? 0;
        double seconds = Math.Max(1, total - setup) / 1000.0;
        var table = new Table().Border(TableBorder.Rounded).AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("total time", $"{total} ms");
        table.AddRow("downtime", $"{info["downtime"]?.GetValue<long>() ?? 0} ms");
        table.AddRow("setup time", $"{setup} ms");
        table.AddRow("sent", Bytes(transferred));
        table.AddRow("throughput", $"{transferred / seconds / 1e9:F2} GB/s ({info["ram"]?["mbps"]?.GetValue<double>() ?? 0:F0} Mbit/s)");
        table.AddRow("passes (dirty syncs)", $"{ram?["dirty-sync-count"]?.GetValue<long>() ?? 0}");
        table.AddRow("pages sent", $"{ram?["normal"]?.GetValue<long>() ?? 0}");
        table.AddRow("zero pages sent", $"{ram?["duplicate"]?.GetValue<long>() ?? 0}");
        table.AddRow("source run state", sourceState);
        table.AddRow("destination", destinationDone ? $"completed, {destinationState}" : "did not complete");
        table.AddRow("guest runs on destination", guestRuns ? "yes" : "NO");
        table.AddRow("memory check", Markup.Escape(check?["description"]?.GetValue<string>() ?? "not run"));
        table.AddRow("VFIO bytes sent", Bytes(info["vfio"]?["transferred"]?.GetValue<long>() ?? 0));
        foreach ((string id, _, string detail) in devices)
        {
            table.AddRow($"VFIO device {id}", Markup.Escape(detail));
        }
        AnsiConsole.Write(table);
    }

    private static int FreeLoopbackPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static string DescribeRate(long pagesPerSecond) =>
        pagesPerSecond == 0 ? "full speed" : $"{pagesPerSecond} pages/s ({pagesPerSecond * 4096.0 / 1e6:F0} MB/s)";

    private static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:F1} KiB",
        _ => $"{bytes} B",
    };
}
