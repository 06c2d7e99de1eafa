using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// <c>-device vfio-emu</c> devices (QEMU's VFIO migration handler over an emulated uAPI v2
/// device) migrated between two real <c>minivmm run</c> processes over TCP and through a file.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class VfioMigrationProcessTests : VmFixture
{
    private const string MultipleWithoutP2P = "Multiple VFIO devices migration is supported only if all of them support P2P migration";

    private static readonly string[] Machine = ["-M", "none", "-m", "128M", "-nodefaults", "-display", "none"];

    [Test]
    public async Task Two_p2p_precopy_devices_beside_a_dirtying_guest_migrate_over_tcp_with_equal_state()
    {
        string[] devices = Devices("p2p=on,precopy=on", seed: 1);
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartAsync("dst", [.. Machine, "-guest", "dirty,rate=20000", .. Devices("p2p=on,precopy=on", seed: 2), "-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        Vm source = await StartAsync("src", [.. Machine, "-guest", "dirty,rate=20000", .. devices]);
        await source.WaitForRunStateAsync("running");

        await source.MigrateAsync(uri);
        JsonObject completed = await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");

        await AssertDevicesArrivedAsync(source, destination);
        long transferred = completed["vfio"]?["transferred"]?.GetValue<long>() ?? -1;
        Assert.That(transferred, Is.GreaterThanOrEqualTo((4L + 8L) << 20), $"vfio transferred: {completed.ToJsonString()}");
        TestContext.Out.WriteLine(
            $"vfio transferred {transferred} bytes for 12 MiB of device state; total-time {completed["total-time"]} ms, downtime {completed["downtime"]} ms");
    }

    [TestCase("p2p=off", "p2p=off")]
    [TestCase("p2p=on", "p2p=off")]
    public async Task Two_devices_without_p2p_on_both_block_migrate_and_with_p2p_on_both_they_migrate(string first, string second)
    {
        Vm blocked = await StartAsync("blocked", [.. Machine, "-device", $"vfio-emu,id=gpu0,{first}", "-device", $"vfio-emu,id=gpu1,{second}"]);
        JsonObject reply = await blocked.Qmp.ExecuteAsync("migrate", new() { ["uri"] = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}" });
        JsonObject info = await blocked.QueryMigrateAsync();

        Assert.Multiple(() =>
        {
            Assert.That(reply["error"]?["desc"]?.GetValue<string>(), Is.EqualTo(MultipleWithoutP2P), reply.ToJsonString());
            if (info["blocked-reasons"] is JsonArray reasons)
            {
                Assert.That(reasons.Select(r => r?.GetValue<string>()), Does.Contain(MultipleWithoutP2P));
            }
        });
        Assert.That(await blocked.RunStateAsync(), Is.EqualTo("running"), "a refused migrate leaves the VM alone");

        // The same pair with P2P on both: no blocker, the migration completes.
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartAsync("dst", [.. Machine, .. Devices("p2p=on,precopy=off", seed: 2), "-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        Vm source = await StartAsync("src", [.. Machine, .. Devices("p2p=on,precopy=off", seed: 1)]);
        Assert.That((await source.QueryMigrateAsync())["blocked-reasons"], Is.Null);
        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await AssertDevicesArrivedAsync(source, destination);
    }

    [Test]
    public async Task The_source_emits_vfio_migration_events_precopy_p2p_stop_copy_stop_for_each_device()
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartAsync("dst", [.. Machine, .. Devices("p2p=on,precopy=on", seed: 2), "-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        Vm source = await StartAsync("src", [.. Machine, .. Devices("p2p=on,precopy=on", seed: 1)]);
        await source.WaitForRunStateAsync("running");
        int before = source.Qmp.Events.Count; // boot's events (running-p2p, running) came before query-status's reply

        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        // save_cleanup's STOP_COPY→STOP runs after the status became completed: wait for its event.
        await WaitForEventsAsync(source, before, e => StatesOf(e, "gpu0").Count == 4 && StatesOf(e, "gpu1").Count == 4);

        IReadOnlyList<JsonObject> events = [.. source.Qmp.Events.Skip(before)];
        string[] expected = ["pre-copy", "pre-copy-p2p", "stop-copy", "stop"];
        Assert.Multiple(() =>
        {
            Assert.That(StatesOf(events, "gpu0"), Is.EqualTo(expected), "gpu0");
            Assert.That(StatesOf(events, "gpu1"), Is.EqualTo(expected), "gpu1");
            JsonObject first = events.First(e => (string?)e["event"] == "VFIO_MIGRATION");
            Assert.That(first["data"]?["qom-path"]?.GetValue<string>(), Does.StartWith("/machine/peripheral/gpu"));
        });
    }

    [Test]
    public async Task A_snapshot_to_a_file_loads_into_a_second_process_with_equal_device_state()
    {
        string file = Temp.File("vfio-snapshot.bin");
        Vm source = await StartAsync("src", [.. Machine, .. Devices("p2p=on,precopy=on", seed: 1)]);
        await source.WaitForRunStateAsync("running");
        await source.ReturnOfAsync("stop");
        // The switchover threshold is the last 100 ms window's bandwidth times the downtime limit.
        // A stopped VM moves almost nothing once RAM is sent, so with the default 300 ms the 12 MiB
        // of stop-copy data would never fit (QEMU's formula behaves the same): allow a long downtime.
        await source.SetParametersAsync(new() { ["downtime-limit"] = 2_000_000 });
        await source.MigrateAsync($"file:{file}");
        await source.WaitForCompletedAsync();

        Vm destination = await StartAsync("dst", [.. Machine, .. Devices("p2p=on,precopy=on", seed: 2), "-incoming", $"file:{file}"]);
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("paused");

        // The stream carried "paused": the devices stay in RESUMING (their state not yet applied) until cont.
        JsonNode? waiting = (await destination.ReturnOfAsync("x-query-device", new() { ["id"] = "gpu0" }))?["info"];
        Assert.That(waiting?["device-state"]?.GetValue<string>(), Is.EqualTo("resuming"), waiting?.ToJsonString());
        await destination.ReturnOfAsync("cont");
        await AssertDevicesArrivedAsync(source, destination);
        TestContext.Out.WriteLine($"snapshot file: {new FileInfo(file).Length} bytes");
    }

    [Test]
    public async Task A_device_failing_to_enter_stop_copy_fails_the_migration_is_reset_and_the_source_runs_on()
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartAsync("dst", [.. Machine, .. Devices("p2p=on,precopy=on", seed: 2), "-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        Vm source = await StartAsync("src",
        [
            .. Machine, "-guest", "dirty,rate=2000",
            "-device", "vfio-emu,id=gpu0,state-size=4,seed=1,p2p=on,precopy=on,x-fail=stop-copy",
            "-device", "vfio-emu,id=gpu1,state-size=8,seed=11,p2p=on,precopy=on",
        ]);
        await source.WaitForRunStateAsync("running");
        int before = source.Qmp.Events.Count;

        await source.MigrateAsync(uri);
        JsonObject end = await source.WaitForMigrationEndAsync();
        await source.WaitForRunStateAsync("running");
        JsonNode? failing = (await source.ReturnOfAsync("x-query-device", new() { ["id"] = "gpu0" }))?["info"];
        JsonNode? other = (await source.ReturnOfAsync("x-query-device", new() { ["id"] = "gpu1" }))?["info"];
        long operations = failing?["operations"]?.GetValue<long>() ?? -1;
        await WaitForEventsAsync(source, before, e => StatesOf(e, "gpu0").LastOrDefault() == "running" && StatesOf(e, "gpu1").LastOrDefault() == "running");
        IReadOnlyList<JsonObject> events = [.. source.Qmp.Events.Skip(before)];

        Assert.Multiple(() =>
        {
            Assert.That(end["status"]?.GetValue<string>(), Is.EqualTo("failed"), end.ToJsonString());
            Assert.That(end["error-desc"]?.GetValue<string>(), Does.Contain("gpu0"), end.ToJsonString());
            Assert.That(failing?["device-state"]?.GetValue<string>(), Is.EqualTo("running"), failing?.ToJsonString());
            Assert.That(failing?["kernel-state"]?.GetValue<string>(), Is.EqualTo("running"), failing?.ToJsonString());
            Assert.That(other?["device-state"]?.GetValue<string>(), Is.EqualTo("running"), other?.ToJsonString());
            // pre-copy (setup), pre-copy-p2p (prepare), then the STOP_COPY request fails and the
            // device is reset (running); the restarted VM takes it through running-p2p to running.
            Assert.That(StatesOf(events, "gpu0"), Is.EqualTo(new[] { "pre-copy", "pre-copy-p2p", "running", "running-p2p", "running" }));
        });

        // The reset device runs again: its DMA engine keeps working.
        await WaitUntilAsync(async () =>
            ((await source.ReturnOfAsync("x-query-device", new() { ["id"] = "gpu0" }))?["info"]?["operations"]?.GetValue<long>() ?? -1) > operations,
            "gpu0 performs DMA again");
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"timed out waiting until {what}");
            await Task.Delay(50);
        }
    }

    private static string[] Devices(string options, int seed) =>
        ["-device", $"vfio-emu,id=gpu0,state-size=4,seed={seed},{options}", "-device", $"vfio-emu,id=gpu1,state-size=8,seed={seed + 10},{options}"];

    /// <summary>For each device: the destination loaded exactly the source's state at the switchover.</summary>
    private static Task AssertDevicesArrivedAsync(Vm source, Vm destination) =>
        MigratedVfioDevices.AssertArrivedAsync(source, destination, "gpu0", "gpu1");

    private static List<string> StatesOf(IEnumerable<JsonObject> events, string id) =>
        [.. events.Where(e => (string?)e["event"] == "VFIO_MIGRATION" && (string?)e["data"]?["device-id"] == id)
            .Select(e => e["data"]?["device-state"]?.GetValue<string>() ?? "?")];

    private static async Task WaitForEventsAsync(Vm vm, int skip, Func<IEnumerable<JsonObject>, bool> done)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!done(vm.Qmp.Events.Skip(skip)))
        {
            if (clock.Elapsed > QmpClient.DefaultTimeout)
            {
                throw new AssertionException(
                    $"events never arrived; got [{string.Join(", ", vm.Qmp.Events.Skip(skip).Select(e => e.ToJsonString()))}]");
            }

            await Task.Delay(20);
        }
    }
}
