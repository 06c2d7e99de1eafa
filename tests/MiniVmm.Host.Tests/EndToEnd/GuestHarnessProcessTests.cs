using System.Text.Json.Nodes;
using MiniVmm.Host.Demo;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// <c>-guest harness</c> with real processes: <c>minivmm run</c> on each side, each with its own
/// Rust <c>dirty-guest</c> harness process writing guest RAM. The checks use the harness's own
/// saved position (<see cref="HarnessGuestPosition"/>), which sees lost writes that QEMU's
/// check_guests_ram rule cannot.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class GuestHarnessProcessTests : VmFixture
{
    private const long Ram64M = 64L << 20;
    private const long PageCount = Ram64M / GuestRam.PageSize;
    private static readonly string[] Machine = ["-M", "none", "-m", "64M", "-nodefaults", "-display", "none"];

    private readonly List<HarnessProcess> _harnesses = [];

    [TearDown]
    public async Task KillHarnesses()
    {
        foreach (HarnessProcess harness in _harnesses)
        {
            if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed)
            {
                TestContext.Out.WriteLine($"--- harness {harness.Pid} stderr:\n{harness.Stderr}");
            }

            await harness.DisposeAsync();
        }

        _harnesses.Clear();
    }

    [Test]
    public async Task A_live_migration_over_tcp_loses_no_harness_write([Values(300, 50)] int downtimeLimit)
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        (Vm destination, _) = await StartWithHarnessAsync("dst", ["-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        (Vm source, _) = await StartWithHarnessAsync("src", [], "--rate", "20000");
        await source.SetParametersAsync(new() { ["downtime-limit"] = downtimeLimit, ["max-bandwidth"] = 256L << 20 });
        await WaitForPagesAsync(source, PageCount);

        await source.MigrateAsync(uri);
        JsonObject info = await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");

        // The source's harness is paused since the switchover: its position is what it wrote.
        HarnessGuestPosition atSwitchover = await StateAsync(source);
        Assert.That(await MismatchAsync(source, atSwitchover, "src"), Is.Null, "the source's own RAM");
        await Task.Delay(300);
        await destination.ReturnOfAsync("stop");
        HarnessGuestPosition later = await StateAsync(destination);

        Assert.Multiple(async () =>
        {
            Assert.That(await MismatchAsync(destination, later, "dst"), Is.Null, "the destination's RAM against its harness");
            Assert.That(later.PagesWritten(PageCount), Is.GreaterThan(atSwitchover.PagesWritten(PageCount)),
                "the destination's harness did not carry on from the source's position");
            Assert.That(info["ram"]?["dirty-sync-count"]?.GetValue<long>(), Is.GreaterThan(1), info.ToJsonString());
            Assert.That(info["downtime"]?.GetValue<long>(), Is.GreaterThan(0), info.ToJsonString());
        });
        TestContext.Out.WriteLine($"downtime-limit {downtimeLimit}: {info.ToJsonString()}");
    }

    [Test]
    public async Task Stop_freezes_guest_memory_and_cont_resumes_writing()
    {
        (Vm vm, _) = await StartWithHarnessAsync("vm", [], "--rate", "20000");
        await WaitForPagesAsync(vm, 1000);

        await vm.ReturnOfAsync("stop");
        byte[] first = await vm.ReadRamAsync(0, Ram64M, Temp.File("a.img"));
        await Task.Delay(1000);
        byte[] second = await vm.ReadRamAsync(0, Ram64M, Temp.File("b.img"));
        Assert.That(GuestRam.FirstDifference(first, second), Is.EqualTo("equal"), "guest RAM changed while the VM was stopped");

        await vm.ReturnOfAsync("cont");
        await Task.Delay(300);
        byte[] third = await vm.ReadRamAsync(0, Ram64M, Temp.File("c.img"));
        Assert.That(third.AsSpan().SequenceEqual(second), Is.False, "guest RAM did not change after cont");
    }

    [Test]
    public async Task A_snapshot_to_a_file_resumes_in_a_fresh_process_from_the_harness_position()
    {
        (Vm source, _) = await StartWithHarnessAsync("src", [], "--rate", "20000");
        await WaitForPagesAsync(source, PageCount + 500);
        await source.ReturnOfAsync("stop");
        HarnessGuestPosition saved = await StateAsync(source);
        string file = Temp.File("snapshot.bin");
        await source.MigrateAsync($"file:{file}");
        await source.WaitForCompletedAsync();

        (Vm restored, _) = await StartWithHarnessAsync("dst", ["-incoming", $"file:{file}"]);
        await restored.WaitForCompletedAsync();
        await restored.WaitForRunStateAsync("paused");
        HarnessGuestPosition loaded = await StateAsync(restored);
        Assert.That(loaded, Is.EqualTo(saved), "the fresh harness did not take the saved position");
        Assert.That(await MismatchAsync(restored, loaded, "loaded"), Is.Null);

        await restored.ReturnOfAsync("cont");
        await Task.Delay(300);
        await restored.ReturnOfAsync("stop");
        HarnessGuestPosition resumed = await StateAsync(restored);
        Assert.Multiple(async () =>
        {
            Assert.That(resumed.PagesWritten(PageCount), Is.GreaterThan(saved.PagesWritten(PageCount)));
            Assert.That(await MismatchAsync(restored, resumed, "resumed"), Is.Null, "the harness did not resume where it stopped");
        });
    }

    [Test]
    public async Task Analyze_decodes_a_snapshot_with_harness_state_and_vfio_sections()
    {
        (Vm source, _) = await StartWithHarnessAsync("src", ["-device", "vfio-emu,id=gpu0,state-size=1"], "--rate", "20000");
        await WaitForPagesAsync(source, 500);
        await source.ReturnOfAsync("stop");
        string file = Temp.File("snapshot.bin");
        await source.MigrateAsync($"file:{file}");
        await source.WaitForCompletedAsync();

        await using MiniVmmProcess analyze = MiniVmmProcess.Start("analyze", file);
        Assert.That(await analyze.WaitForExitAsync(), Is.EqualTo(0), analyze.Stdout + analyze.Stderr);
        JsonArray sections = JsonNode.Parse(analyze.Stdout)!["sections"]!.AsArray();

        JsonNode harness = sections.Single(s => s?["idstr"]?.GetValue<string>() == "x-guest-harness")!;
        JsonNode[] vfio = [.. sections.Where(s => s?["idstr"]?.GetValue<string>() == "gpu0/vfio").Select(s => s!)];
        Assert.Multiple(() =>
        {
            Assert.That(harness["decoded"]?["state_bytes"]?.GetValue<long>(), Is.EqualTo(16), harness.ToJsonString());
            Assert.That(vfio.Select(s => s["type"]?.GetValue<string>()), Does.Contain("START").And.Contain("END").And.Contain("FULL"));
            Assert.That(vfio.Sum(s => s["decoded"]?["data_bytes"]?.GetValue<long>() ?? 0), Is.GreaterThanOrEqualTo(1L << 20),
                "the device's 1 MiB of state is in the DATA records");
            Assert.That(vfio.All(s => s["decoded"] is not null), Is.True, "every VFIO section was decoded, none skipped");
        });
    }

    [Test]
    public async Task A_frozen_harness_fails_the_switchover_naming_it_and_the_source_runs_on()
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        (Vm doomed, _) = await StartWithHarnessAsync("dst1", ["-incoming", uri]);
        await doomed.WaitUntilListeningAsync();
        (Vm source, HarnessProcess harness) = await StartWithHarnessAsync("src", [], ["--rate", "20000"], pauseTimeout: 300);
        await WaitForPagesAsync(source, 1000);

        await harness.SignalAsync("STOP");
        await source.MigrateAsync(uri);
        JsonObject failed = await source.WaitForMigrationEndAsync();
        await harness.SignalAsync("CONT");

        Assert.Multiple(() =>
        {
            Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), failed.ToJsonString());
            Assert.That(failed["error-desc"]?.GetValue<string>(),
                Does.Contain($"guest harness (pid {harness.Pid})").And.Contain("Pause got no reply within 300 ms"));
        });
        await source.WaitForRunStateAsync("running");
        ulong before = (await StoppedStateAsync(source)).PagesWritten(PageCount);
        await source.ReturnOfAsync("cont");
        await Task.Delay(300);
        Assert.That((await StoppedStateAsync(source)).PagesWritten(PageCount), Is.GreaterThan(before), "the harness did not run on");
        await source.ReturnOfAsync("cont");

        await MigrateToFreshDestinationAndCheckAsync(source, "dst2");
    }

    [Test]
    public async Task A_harness_killed_mid_migration_fails_it_and_stops_the_source_in_internal_error_with_ram_intact()
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        (Vm destination, _) = await StartWithHarnessAsync("dst", ["-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        (Vm source, HarnessProcess harness) = await StartWithHarnessAsync("src", [], "--rate", "20000");
        await source.ReturnOfAsync("migrate-set-capabilities", new()
        {
            ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "events", ["state"] = true }),
        });
        await source.SetParametersAsync(new() { ["max-bandwidth"] = 16L << 20 });
        await WaitForPagesAsync(source, PageCount);

        await source.MigrateAsync(uri);
        await source.WaitForMigrationStatusAsync("active");
        await harness.SignalAsync("KILL");
        JsonObject failed = await source.WaitForMigrationEndAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), failed.ToJsonString());
            Assert.That(failed["error-desc"]?.GetValue<string>(),
                Does.Contain($"guest harness (pid {harness.Pid})").And.Contain("disconnected"));
            Assert.That(await source.RunStateAsync(), Is.EqualTo("internal-error"));
            JsonObject gone = await source.Qmp.WaitForEventAsync("GUEST_HARNESS_DISCONNECTED");
            Assert.That(gone["data"]?["pid"]?.GetValue<int>(), Is.EqualTo(harness.Pid));
        });
        byte[] ram = await source.ReadRamAsync(0, Ram64M, Temp.File("src.img"));
        Assert.That(GuestRam.CheckIncrementingGuest(ram, out _), Is.Null, "the source's RAM after its harness died");
        JsonObject refused = await source.Qmp.ExecuteAsync("cont");
        Assert.That(refused["error"]?["desc"]?.GetValue<string>(), Does.Contain("Resetting the Virtual Machine is required"));
    }

    [Test]
    public async Task A_destination_without_a_harness_fails_the_load_and_the_source_runs_on_then_migrates_to_one_that_has_it()
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm bare = await StartAsync("dst1", [.. Machine, "-incoming", uri]);
        await SetCapabilitiesAsync(bare, "return-path");
        (Vm source, _) = await StartWithHarnessAsync("src", [], "--rate", "20000");
        await SetCapabilitiesAsync(source, "return-path");
        await WaitForPagesAsync(source, 1000);

        await source.MigrateAsync(uri);
        JsonObject failed = await source.WaitForMigrationEndAsync();

        Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), failed.ToJsonString());
        Assert.That(await bare.Process.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(bare.Process.Stderr, Does.Contain("Unknown savevm section or instance 'x-guest-harness' 0"));
        await source.WaitForRunStateAsync("running");

        await MigrateToFreshDestinationAndCheckAsync(source, "dst2", "return-path");
    }

    [Test]
    public async Task A_destination_harness_that_refuses_the_state_fails_the_load_and_the_source_runs_on()
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        string socket = Temp.File("dst1.harness");
        HarnessProcess? other = null;
        Vm refusing = await StartAsync("dst1", [.. Machine, "-guest", $"harness,socket={socket}", "-incoming", uri], async _ =>
        {
            // A different guest program on the destination: the first_harness example, whose
            // state is 8 bytes, refuses dirty-guest's 16.
            other = HarnessProcess.StartExample("first_harness", socket);
            _harnesses.Add(other);
            await Task.CompletedTask;
        });
        await SetCapabilitiesAsync(refusing, "return-path");
        (Vm source, _) = await StartWithHarnessAsync("src", [], "--rate", "20000");
        await SetCapabilitiesAsync(source, "return-path");
        await WaitForPagesAsync(source, 1000);

        await source.MigrateAsync(uri);
        JsonObject failed = await source.WaitForMigrationEndAsync();

        Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), failed.ToJsonString());
        Assert.That(await refusing.Process.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(refusing.Process.Stderr, Does.Contain($"guest harness (pid {other!.Pid})").And.Contain("refused LoadState"));
        await source.WaitForRunStateAsync("running");

        await MigrateToFreshDestinationAndCheckAsync(source, "dst2", "return-path");
    }

    [Test]
    public async Task A_harness_sees_minivmm_die_and_exits_non_zero_and_quit_shuts_it_down_cleanly()
    {
        (Vm killed, HarnessProcess orphan) = await StartWithHarnessAsync("a", [], "--rate", "20000");
        await WaitForPagesAsync(killed, 1000);
        await killed.Process.SignalAsync("KILL");
        Assert.That(await orphan.WaitForExitAsync(), Is.EqualTo(1), orphan.Stderr);

        (Vm quitting, HarnessProcess harness) = await StartWithHarnessAsync("b", [], "--rate", "20000");
        await WaitForPagesAsync(quitting, 1000);
        await quitting.QuitAsync();
        Assert.That(await harness.WaitForExitAsync(), Is.EqualTo(0), harness.Stderr);
    }

    [Test]
    public async Task Cont_without_a_harness_waits_for_the_connect_timeout_and_is_refused_until_one_connects()
    {
        string socket = Temp.File("vm.harness");
        Vm vm = await StartAsync("vm", [.. Machine, "-S", "-guest", $"harness,socket={socket},connect-timeout=300"]);

        JsonObject refused = await vm.Qmp.ExecuteAsync("cont");
        Assert.That(refused["error"]?["desc"]?.GetValue<string>(),
            Does.Contain($"no guest harness connected to {socket} within 300 ms"));
        Assert.That(await vm.RunStateAsync(), Is.EqualTo("prelaunch"));

        Track(HarnessProcess.Start(socket));
        await WaitForConnectedAsync(vm);
        await vm.ReturnOfAsync("cont");
        await WaitForPagesAsync(vm, 100);
    }

    [TestCase(new[] { "-m", "64M", "-guest", "harness,socket=/nonexistent-dir/h.sock" },
        "minivmm: -guest harness: cannot listen on /nonexistent-dir/h.sock: ")]
    [TestCase(new[] { "-guest", "harness,socket=/tmp/unused-harness.sock" }, "minivmm: -guest harness needs RAM (use -m)")]
    [TestCase(new[] { "-m", "64M", "-guest", "harness,socket=/tmp/x.sock,pause-timeout=0" },
        "minivmm: -guest harness,socket=/tmp/x.sock,pause-timeout=0: pause-timeout must be a positive number of milliseconds")]
    public async Task A_harness_that_cannot_be_set_up_is_one_line_on_stderr_and_exit_1(string[] arguments, string start)
    {
        await using MiniVmmProcess vm = MiniVmmProcess.Start(["run", "-M", "none", "-S", .. arguments]);

        Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(1));
        string[] lines = vm.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), vm.Stderr);
        Assert.That(lines[0], Does.StartWith(start));
    }

    private async Task<(Vm Vm, HarnessProcess Harness)> StartWithHarnessAsync(
        string name, string[] extra, string[] harnessArguments, int pauseTimeout = 0)
    {
        string socket = Temp.File(name + ".harness");
        string guest = pauseTimeout > 0 ? $"harness,socket={socket},pause-timeout={pauseTimeout}" : $"harness,socket={socket}";
        HarnessProcess? harness = null;
        Vm vm = await StartAsync(name, [.. Machine, "-guest", guest, .. extra], _ =>
        {
            harness = Track(HarnessProcess.Start(socket, harnessArguments));
            return Task.CompletedTask;
        });
        await WaitForConnectedAsync(vm);
        return (vm, harness!);
    }

    private Task<(Vm Vm, HarnessProcess Harness)> StartWithHarnessAsync(string name, string[] extra, params string[] harnessArguments) =>
        StartWithHarnessAsync(name, extra, harnessArguments, pauseTimeout: 0);

    private HarnessProcess Track(HarnessProcess harness)
    {
        _harnesses.Add(harness);
        return harness;
    }

    private static async Task WaitForConnectedAsync(Vm vm)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while ((await vm.ReturnOfAsync("x-query-guest-harness"))?["connected"]?.GetValue<bool>() != true)
        {
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), $"{vm.Name}: no harness connected");
            await Task.Delay(20);
        }
    }

    /// <summary>The harness's state: a stopped VM is asked directly, a running one is stopped first and left stopped.</summary>
    private static async Task<HarnessGuestPosition> StoppedStateAsync(Vm vm)
    {
        await vm.ReturnOfAsync("stop");
        return await StateAsync(vm);
    }

    private static async Task<HarnessGuestPosition> StateAsync(Vm vm) =>
        HarnessGuestPosition.From(await vm.ReturnOfAsync("x-query-guest-harness", new() { ["state"] = true }));

    private async Task<string?> MismatchAsync(Vm vm, HarnessGuestPosition state, string name) =>
        state.Mismatch(await vm.ReadRamAsync(0, Ram64M, Temp.File(name + ".img")));

    /// <summary>Waits until the running VM's harness has written <paramref name="pages"/> pages (checked with short stops).</summary>
    private static async Task WaitForPagesAsync(Vm vm, long pages)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            ulong written = (await StoppedStateAsync(vm)).PagesWritten(PageCount);
            await vm.ReturnOfAsync("cont");
            if (written >= (ulong)pages)
            {
                return;
            }

            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), $"{vm.Name}: the harness wrote only {written} pages");
            await Task.Delay(100);
        }
    }

    private static Task SetCapabilitiesAsync(Vm vm, params string[] names) =>
        vm.ReturnOfAsync("migrate-set-capabilities", new()
        {
            ["capabilities"] = new JsonArray([.. names.Select(n => (JsonNode)new JsonObject { ["capability"] = n, ["state"] = true })]),
        });

    /// <summary>Migrates the running source to a fresh destination with its own harness and checks every write arrived.</summary>
    private async Task MigrateToFreshDestinationAndCheckAsync(Vm source, string name, params string[] capabilities)
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        (Vm destination, _) = await StartWithHarnessAsync(name, ["-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        if (capabilities.Length > 0)
        {
            await SetCapabilitiesAsync(destination, capabilities);
        }

        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");
        await Task.Delay(200);
        await destination.ReturnOfAsync("stop");
        Assert.That(await MismatchAsync(destination, await StateAsync(destination), name), Is.Null, $"{name}'s RAM against its harness");
    }
}
