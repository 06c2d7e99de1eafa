using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using MiniVmm.Migration.Report.Model;
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
        string? report = null;
        try
        {
            report = settings.ReportPath is { } path ? Reports.MigrationReportWriter.CheckPath(path) : null;
        }
        catch (ArgumentException error)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]demo:[/] --report: {error.Message}");
            return 1;
        }

        DirectoryInfo directory = Directory.CreateTempSubdirectory("minivmm-demo-");
        try
        {
            return await RunInAsync(directory.FullName, report, cancellation).ConfigureAwait(false);
        }
        catch (Exception error) when (error is IOException or TimeoutException or InvalidOperationException or OperationCanceledException or InvalidDataException)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]demo failed:[/] {error.Message}");
            return 1;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private async Task<int> RunInAsync(string directory, string? report, CancellationToken cancellation)
    {
        int port = FreeLoopbackPort();
        string ram = settings.RamSize;
        string guest = settings.Guest == DemoGuest.Harness ? "the Rust guest harness (dirty-guest)" : "the built-in dirtying guest";
        AnsiConsole.MarkupLineInterpolated($"[bold]MiniVmm live migration demo[/]: {ram} of guest RAM, {guest} at {DescribeRate(settings.GuestPagesPerSecond)}, TCP 127.0.0.1:{port}");

        bool harness = settings.Guest == DemoGuest.Harness;
        string? harnessBinary = harness ? HarnessBinary.Locate(settings.HarnessBinary) : null;
        string[] MachineFor(string name) =>
        [
            "-M", "none", "-m", ram, "-nodefaults", "-display", "none",
            "-guest", harness ? $"harness,socket={Path.Combine(directory, name + ".harness")}" : $"dirty,rate={settings.GuestPagesPerSecond}",
            .. VfioDevices.SelectMany(d => new[] { "-device", $"vfio-emu,id={d.Id},p2p=on,precopy=on,state-size={d.StateMiB}" }),
        ];
        var harnesses = new List<DemoHarness>();
        Action? StartHarness(string name) => harness
            ? () => harnesses.Add(DemoHarness.Start(
                harnessBinary!, Path.Combine(directory, name + ".harness"), settings.GuestPagesPerSecond, Path.Combine(directory, name + "-harness.log")))
            : null;
        try
        {
            return await MigrateAsync(directory, port, harness, report, MachineFor, StartHarness, cancellation).ConfigureAwait(false);
        }
        finally
        {
            foreach (DemoHarness child in harnesses)
            {
                child.Dispose();
            }
        }
    }

    private async Task<int> MigrateAsync(
        string directory, int port, bool harness, string? report, Func<string, string[]> machineFor, Func<string, Action?> startHarness,
        CancellationToken cancellation)
    {
        await using DemoVm destination = await DemoVm.StartAsync(
            "destination", directory, [.. machineFor("destination"), "-incoming", $"tcp:127.0.0.1:{port}"], cancellation,
            startHarness("destination")).ConfigureAwait(false);
        await using DemoVm source = await DemoVm.StartAsync(
            "source", directory, machineFor("source"), cancellation, startHarness("source")).ConfigureAwait(false);

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

        if (settings.AutoConverge)
        {
            await source.Qmp.ReturnOfAsync("migrate-set-capabilities", new JsonObject
            {
                ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "auto-converge", ["state"] = true }),
            }, cancellation).ConfigureAwait(false);
        }

        await source.Qmp.ReturnOfAsync("migrate-set-parameters", new JsonObject
        {
            ["max-bandwidth"] = settings.MaxBandwidth,
            ["downtime-limit"] = settings.DowntimeLimitMs,
        }, cancellation).ConfigureAwait(false);
        var migrate = new JsonObject { ["uri"] = $"tcp:127.0.0.1:{port}" };
        if (report is not null)
        {
            migrate["x-report"] = report;
        }

        await source.Qmp.ReturnOfAsync("migrate", migrate, cancellation).ConfigureAwait(false);

        JsonObject final = await ShowProgressAsync(source, cancellation).ConfigureAwait(false);
        string status = final["status"]?.GetValue<string>() ?? "?";
        if (status != "completed")
        {
            AnsiConsole.MarkupLineInterpolated($"[red]migration {status}[/]: {final["error-desc"]?.GetValue<string>() ?? ""} (logs: {source.LogPath}, {destination.LogPath})");
            if (report is not null)
            {
                await DemoReport.FinishAsync(report, [new ReportNote("demo", $"migration {status}", false)], cancellation).ConfigureAwait(false);
            }

            return 1;
        }

        bool destinationDone = await WaitForDestinationAsync(destination, cancellation).ConfigureAwait(false);
        string sourceState = await RunStateAsync(source, cancellation).ConfigureAwait(false);
        string destinationState = await RunStateAsync(destination, cancellation).ConfigureAwait(false);

        // The guest must be running on the destination: it keeps writing pages there.
        MemoryCheck check = harness
            ? await CheckHarnessGuestAsync(
                source, destination, (long)CommandLine.VmOptionsParser.ParseMemory(settings.RamSize), directory, cancellation).ConfigureAwait(false)
            : await CheckDirtyingGuestAsync(destination, cancellation).ConfigureAwait(false);
        var devices = new List<(string Id, bool Equal, string Detail)>();
        foreach ((string id, int stateMiB) in VfioDevices)
        {
            JsonNode? sent = (await source.Qmp.ReturnOfAsync("x-query-device", new JsonObject { ["id"] = id }, cancellation).ConfigureAwait(false))?["info"];
            JsonNode? received = (await destination.Qmp.ReturnOfAsync("x-query-device", new JsonObject { ["id"] = id }, cancellation).ConfigureAwait(false))?["info"];
            string? digest = sent?["digest"]?.GetValue<string>();
            bool equal = digest is not null && digest == received?["loaded-digest"]?.GetValue<string>();
            devices.Add((id, equal,
                $"{stateMiB} MiB state, {Bytes(sent?["bytes-transferred"]?.GetValue<long>() ?? 0)} sent, " +
                $"{(equal ? "state identical" : "STATE DIFFERS")} (sha256 {digest?[..12]}…), now {received?["device-state"]?.GetValue<string>()}"));
        }

        PrintSummary(final, destinationDone, sourceState, destinationState, check, devices);
        bool passed = destinationDone && check.Consistent && check.GuestRuns && sourceState == "postmigrate" && devices.All(d => d.Equal);
        if (report is not null)
        {
            await DemoReport.FinishAsync(report, [
                new ReportNote("source run state", sourceState, sourceState == "postmigrate"),
                new ReportNote("destination", destinationDone ? $"completed, {destinationState}" : "did not complete", destinationDone),
                new ReportNote("guest runs on destination", check.GuestRuns ? "yes" : "no", check.GuestRuns),
                new ReportNote("memory check", check.Description, check.Consistent),
                .. devices.Select(d => new ReportNote($"VFIO device {d.Id}", d.Detail, d.Equal)),
                new ReportNote("demo", passed ? "passed" : "FAILED", passed),
            ], cancellation).ConfigureAwait(false);
        }

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
                // Plain output: a pipe has no width, so the line is not wrapped at 80 columns.
                Console.Out.WriteLine($"  [{clock.Elapsed.TotalSeconds,6:F2} s] {text}");
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
        long throttle = info["cpu-throttle-percentage"]?.GetValue<long>() ?? 0;
        text = $"{status,-9} pass {pass,3}  sent {Bytes(transferred),10}  left {Bytes(remaining),10}  dirty {dirtyRate,7} pages/s"
            + (throttle > 0 ? $"  throttle {throttle}%" : "");
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

    /// <summary>What the demo found on the destination: whether memory is right, whether the guest runs there, and how it was checked.</summary>
    private sealed record MemoryCheck(bool Consistent, bool GuestRuns, string Description);

    /// <summary>The built-in guest: QEMU's check_guests_ram rule (x-check-guest-memory) and its page counter.</summary>
    private static async Task<MemoryCheck> CheckDirtyingGuestAsync(DemoVm destination, CancellationToken cancellation)
    {
        JsonNode? before = await destination.Qmp.ReturnOfAsync("x-check-guest-memory", null, cancellation).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromMilliseconds(300), cancellation).ConfigureAwait(false);
        await destination.Qmp.ReturnOfAsync("stop", null, cancellation).ConfigureAwait(false);
        JsonNode? check = await destination.Qmp.ReturnOfAsync("x-check-guest-memory", null, cancellation).ConfigureAwait(false);
        return new MemoryCheck(
            check?["consistent"]?.GetValue<bool>() == true,
            Progress(check) > Progress(before),
            check?["description"]?.GetValue<string>() ?? "not run");
    }

    /// <summary>
    /// The harness guest: the no-lost-write check. The destination's RAM must equal, page for
    /// page, what its harness's own position says it wrote, and that position must be past the
    /// source harness's position at the switchover (the guest carried on).
    /// </summary>
    private static async Task<MemoryCheck> CheckHarnessGuestAsync(
        DemoVm source, DemoVm destination, long size, string directory, CancellationToken cancellation)
    {
        HarnessGuestPosition atSwitchover = await PositionAsync(source, cancellation).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromMilliseconds(300), cancellation).ConfigureAwait(false);
        await destination.Qmp.ReturnOfAsync("stop", null, cancellation).ConfigureAwait(false);
        HarnessGuestPosition later = await PositionAsync(destination, cancellation).ConfigureAwait(false);
        string dump = Path.Combine(directory, "destination-ram.img");
        await destination.Qmp.ReturnOfAsync("pmemsave", new JsonObject { ["val"] = 0, ["size"] = size, ["filename"] = dump }, cancellation).ConfigureAwait(false);
        // Below 1 MiB the emulated VFIO devices DMA; the harness owns every page above.
        string? mismatch = later.Mismatch(await File.ReadAllBytesAsync(dump, cancellation).ConfigureAwait(false), lowMemoryIsZero: false);
        File.Delete(dump);
        long pages = size / HarnessGuestPosition.PageSize;
        return new MemoryCheck(
            mismatch is null,
            later.PagesWritten(pages) > atSwitchover.PagesWritten(pages),
            mismatch ?? $"no lost write: RAM equals the harness's position page for page (round {later.Rounds}, next page {later.NextPage}; {later.PagesWritten(pages) - atSwitchover.PagesWritten(pages)} pages written since the switchover)");
    }

    private static async Task<HarnessGuestPosition> PositionAsync(DemoVm vm, CancellationToken cancellation) =>
        HarnessGuestPosition.From(await vm.Qmp.ReturnOfAsync(
            "x-query-guest-harness", new JsonObject { ["state"] = true }, cancellation).ConfigureAwait(false));

    private static void PrintSummary(
        JsonObject info, bool destinationDone, string sourceState, string destinationState, MemoryCheck check,
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
        table.AddRow("guest runs on destination", check.GuestRuns ? "yes" : "NO");
        table.AddRow("memory check", Markup.Escape(check.Description));
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
