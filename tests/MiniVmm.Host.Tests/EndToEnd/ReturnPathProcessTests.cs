using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// The <c>return-path</c> and <c>switchover-ack</c> capabilities with real processes: MiniVmm to
/// MiniVmm and both directions with QEMU 7.2 over TCP, a destination that cannot load (its SHUT 1
/// fails the source, which runs again), VFIO devices acking the switchover, the capability check,
/// and one-way URIs that cannot carry a return path (after which the client may retry at once).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ReturnPathProcessTests : VmFixture
{
    private const string ReturnPath = "return-path";
    private const string SwitchoverAck = "switchover-ack";
    private const string SwitchoverAckNeedsReturnPath = "Capability 'switchover-ack' requires capability 'return-path'";
    private const string SiblingError = "RP: Sibling indicated error 1";
    private const long Ram64M = 64L << 20;
    private const long LoaderAddress = 0x400000;

    private byte[] _data = null!;

    /// <summary>Writes the loader's data into <see cref="VmFixture.Temp"/> (created by the base's SetUp, which runs first).</summary>
    [SetUp]
    public void WriteLoaderData() => _data = GuestRam.WriteRandomFile(Temp.File("data.bin"), 2 << 20, seed: 41);

    /// <summary>The machine both programs run: <c>-M none -m SIZE -nodefaults -display none</c>, optionally <c>-S</c>.</summary>
    private static string[] Machine(string memory, bool paused = false) =>
        ["-M", "none", "-m", memory, "-nodefaults", "-display", "none", .. paused ? new[] { "-S" } : []];

    private string[] Loader => ["-device", $"loader,file={Temp.File("data.bin")},addr=0x{LoaderAddress:x}"];

    [Test]
    public async Task MiniVmm_to_MiniVmm_over_tcp_with_return_path_completes_after_the_destinations_shut()
    {
        (Vm source, _, byte[] sourceRam, byte[] destinationRam) = await MigrateWithReturnPathAsync(VmProgram.MiniVmm, VmProgram.MiniVmm);

        AssertHoldsLoaderData(sourceRam, "the source's RAM");
        Assert.That(destinationRam.AsSpan().SequenceEqual(sourceRam), Is.True, GuestRam.FirstDifference(sourceRam, destinationRam));
        Assert.That(await source.RunStateAsync(), Is.EqualTo("postmigrate"));
        // The source's log shows that it waited for the destination's SHUT 0 on the return path.
        await WaitForStderrAsync(source, "return path: SHUT 0");
    }

    [Test]
    public async Task A_destination_that_cannot_load_fails_the_source_through_shut_and_the_source_runs_on_unchanged()
    {
        string uri = NewTcpUri();
        Vm doomed = await StartListeningAsync(VmProgram.MiniVmm, "dst1", "128M", uri);
        Vm source = await StartRunningSourceAsync(VmProgram.MiniVmm);

        // The destination refuses RAM's setup section and closes while the source still writes
        // pages: the source's next write may break, but the SHUT 1 it read is the cause to report.
        byte[] before = await AssertFailsThroughShutAndRunsOnAsync(source, doomed, uri);

        // The failed attempt left nothing behind: the same source migrates to a matching destination.
        string second = NewTcpUri();
        Vm destination = await StartListeningAsync(VmProgram.MiniVmm, "dst2", "64M", second);
        await source.MigrateAsync(second);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");
        byte[] arrived = await destination.ReadRamAsync(0, Ram64M, Temp.File("dst2.img"));
        Assert.That(arrived.AsSpan().SequenceEqual(before), Is.True, GuestRam.FirstDifference(before, arrived));
    }

    [Test]
    public async Task A_destination_that_fails_on_the_last_device_section_fails_the_stopped_source_which_runs_again()
    {
        // The destination lacks the source's x-sample device: its load fails only at the device
        // section, sent after the source stopped the VM for the switchover. The source has written
        // everything and waits for SHUT, so SHUT 1 is what fails it.
        string[] sample = ["-device", "x-sample,id=a,seed=5"];
        string uri = NewTcpUri();
        Vm doomed = await StartListeningAsync(VmProgram.MiniVmm, "dst", "64M", uri);
        Vm source = await StartRunningSourceAsync(VmProgram.MiniVmm, sample);

        await AssertFailsThroughShutAndRunsOnAsync(source, doomed, uri);
        Assert.That(doomed.Process.Stderr, Does.Contain("Unknown savevm section or instance 'a/x-sample' 0"), "sections are keyed by device id");
    }

    [TestCase(VmProgram.Qemu, VmProgram.MiniVmm)]
    [TestCase(VmProgram.MiniVmm, VmProgram.Qemu)]
    public async Task Return_path_migration_with_QEMU_over_tcp_completes_with_identical_ram(VmProgram from, VmProgram to)
    {
        (Vm source, Vm destination, byte[] sourceRam, byte[] destinationRam) = await MigrateWithReturnPathAsync(from, to);

        AssertHoldsLoaderData(sourceRam, $"{from}'s own RAM");
        Vm qemu = from == VmProgram.Qemu ? source : destination;
        Assert.Multiple(async () =>
        {
            Assert.That(destinationRam.AsSpan().SequenceEqual(sourceRam), Is.True, GuestRam.FirstDifference(sourceRam, destinationRam));
            Assert.That(await source.RunStateAsync(), Is.EqualTo("postmigrate"));
            Assert.That(qemu.Process.Stderr, Is.Empty, "QEMU's stderr");
        });
        if (from == VmProgram.MiniVmm)
        {
            // QEMU's destination answered on the return path: MiniVmm read its SHUT 0.
            await WaitForStderrAsync(source, "return path: SHUT 0");
        }
    }

    [Test]
    public async Task QEMU_source_fails_on_the_SHUT_of_a_MiniVmm_destination_that_cannot_load_and_runs_again()
    {
        string uri = NewTcpUri();
        Vm destination = await StartListeningAsync(VmProgram.MiniVmm, "dst", "128M", uri);
        Vm qemu = await StartRunningSourceAsync(VmProgram.Qemu);
        await EnableAsync(qemu, ReturnPath);

        await qemu.MigrateAsync(uri);
        JsonObject failed = await qemu.WaitForMigrationEndAsync();

        Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), $"{failed.ToJsonString()}; stderr:\n{qemu.Process.Stderr}");
        await qemu.WaitForRunStateAsync("running");
        await WaitForStderrAsync(qemu, SiblingError);
        byte[] ram = await qemu.ReadRamAsync(0, Ram64M, Temp.File("src.img"));
        AssertHoldsLoaderData(ram, "QEMU's RAM after the failed migration");
        Assert.That(await destination.Process.WaitForExitAsync(), Is.EqualTo(1), destination.Process.Stderr);
    }

    [Test]
    public async Task Switchover_ack_with_two_p2p_precopy_vfio_devices_completes_with_equal_device_state()
    {
        string[] machine = [.. Machine("128M"), "-guest", "dirty,rate=20000"];
        string uri = NewTcpUri();
        Vm destination = await StartAsync(VmProgram.MiniVmm, "dst", [.. machine, .. VfioDevices(seed: 2), "-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        await EnableAsync(destination, ReturnPath, SwitchoverAck);
        Vm source = await StartAsync(VmProgram.MiniVmm, "src", [.. machine, .. VfioDevices(seed: 1)]);
        await source.WaitForRunStateAsync("running");
        await EnableAsync(source, ReturnPath, SwitchoverAck);

        await source.MigrateAsync(uri);
        JsonObject completed = await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");

        await MigratedVfioDevices.AssertArrivedAsync(source, destination, "dev0", "dev1");

        long transferred = completed["vfio"]?["transferred"]?.GetValue<long>() ?? -1;
        Assert.That(transferred, Is.GreaterThanOrEqualTo((4L + 8L) << 20), $"vfio transferred: {completed.ToJsonString()}");
        // The source switched over only after the destination's SWITCHOVER_ACK (its log says so), then read SHUT 0.
        await WaitForStderrAsync(source, "return path: the destination acked the switchover");
        await WaitForStderrAsync(source, "return path: SHUT 0");
        TestContext.Out.WriteLine(
            $"vfio transferred {transferred} bytes; total-time {completed["total-time"]} ms, downtime {completed["downtime"]} ms");
    }

    [Test]
    public async Task Switchover_ack_needs_return_path_in_the_same_set_of_capabilities()
    {
        Vm vm = await StartAsync(VmProgram.MiniVmm, "vm", Machine("64M", paused: true));

        JsonObject alone = await vm.Qmp.ExecuteAsync("migrate-set-capabilities", CapabilitiesArgument((SwitchoverAck, true)));
        Assert.That(alone["error"]?["desc"]?.GetValue<string>(), Is.EqualTo(SwitchoverAckNeedsReturnPath), alone.ToJsonString());
        Assert.That(alone["error"]?["class"]?.GetValue<string>(), Is.EqualTo("GenericError"), alone.ToJsonString());
        Assert.That(await CapabilityStatesAsync(vm), Is.EqualTo((false, false)), "a refused set changes nothing");

        // Both in one command (switchover-ack listed first): the check applies to the resulting set.
        await vm.ReturnOfAsync("migrate-set-capabilities", CapabilitiesArgument((SwitchoverAck, true), (ReturnPath, true)));
        Assert.That(await CapabilityStatesAsync(vm), Is.EqualTo((true, true)));

        // Turning return-path off under switchover-ack is refused the same way.
        JsonObject off = await vm.Qmp.ExecuteAsync("migrate-set-capabilities", CapabilitiesArgument((ReturnPath, false)));
        Assert.That(off["error"]?["desc"]?.GetValue<string>(), Is.EqualTo(SwitchoverAckNeedsReturnPath), off.ToJsonString());
        Assert.That(await CapabilityStatesAsync(vm), Is.EqualTo((true, true)), "a refused set changes nothing");
    }

    [Test]
    public async Task Return_path_over_a_one_way_uri_fails_and_leaves_the_stopped_vm_as_it_was(
        [Values("exec", "file")] string kind, [Values("prelaunch", "paused")] string state)
    {
        string target = Temp.File("stream.bin");
        string uri = kind == "exec" ? $"exec:cat > {target}" : $"file:{target}";
        Vm vm = await StartAsync(VmProgram.MiniVmm, "src", [.. Machine("64M", paused: state == "prelaunch"), .. Loader]);
        if (state == "paused")
        {
            await vm.WaitForRunStateAsync("running");
            await vm.ReturnOfAsync("stop");
        }

        await vm.WaitForRunStateAsync(state);
        await EnableAsync(vm, ReturnPath);

        await vm.MigrateAsync(uri);
        JsonObject failed = await vm.WaitForMigrationEndAsync();

        Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), failed.ToJsonString());
        Assert.That(failed["error-desc"]?.GetValue<string>(), Does.Contain("Unable to open return-path"), failed.ToJsonString());
        Assert.That(await vm.RunStateAsync(), Is.EqualTo(state));
    }

    [Test]
    public async Task Once_a_one_way_uri_failed_return_path_can_be_turned_off_at_once_and_the_migration_retried(
        [Values("exec", "file")] string kind)
    {
        string target = Temp.File("stream.bin");
        string uri = kind == "exec" ? $"exec:cat > {target}" : $"file:{target}";
        Vm vm = await StartAsync(VmProgram.MiniVmm, "src", [.. Machine("64M", paused: true), .. Loader]);
        await EnableAsync(vm, ReturnPath);
        await vm.MigrateAsync(uri);
        JsonObject failed = await vm.WaitForMigrationEndAsync();
        Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), failed.ToJsonString());

        // QEMU checks only the status: once query-migrate says failed, the capabilities may change
        // and a new migration may start (a client such as libvirt retries right away).
        JsonObject off = await vm.Qmp.ExecuteAsync("migrate-set-capabilities", CapabilitiesArgument((ReturnPath, false)));
        Assert.That(off.ContainsKey("return"), Is.True, $"migrate-set-capabilities right after 'failed': {off.ToJsonString()}");
        JsonObject again = await vm.Qmp.ExecuteAsync("migrate", new() { ["uri"] = uri });
        Assert.That(again.ContainsKey("return"), Is.True, $"migrate right after: {again.ToJsonString()}");
        await vm.WaitForCompletedAsync();
        await vm.WaitForRunStateAsync("postmigrate");
        Assert.That(new FileInfo(target).Length, Is.GreaterThan(_data.Length), "the stream holds the loader's data");
    }

    private static string[] VfioDevices(int seed) =>
    [
        "-device", $"vfio-emu,id=dev0,state-size=4,seed={seed},p2p=on,precopy=on",
        "-device", $"vfio-emu,id=dev1,state-size=8,seed={seed + 10},p2p=on,precopy=on",
    ];

    private static string NewTcpUri() => $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";

    private static JsonObject CapabilitiesArgument(params (string Name, bool State)[] capabilities) => new()
    {
        ["capabilities"] = new JsonArray(
            [.. capabilities.Select(c => (JsonNode)new JsonObject { ["capability"] = c.Name, ["state"] = c.State })]),
    };

    private static Task EnableAsync(Vm vm, params string[] names) =>
        vm.ReturnOfAsync("migrate-set-capabilities", CapabilitiesArgument([.. names.Select(n => (n, true))]));

    /// <summary>(return-path, switchover-ack) as <c>query-migrate-capabilities</c> reports them.</summary>
    private static async Task<(bool ReturnPath, bool SwitchoverAck)> CapabilityStatesAsync(Vm vm)
    {
        JsonArray all = (await vm.ReturnOfAsync("query-migrate-capabilities"))?.AsArray() ?? [];
        bool StateOf(string name) =>
            all.SingleOrDefault(c => (string?)c?["capability"] == name)?["state"]?.GetValue<bool>()
            ?? throw new AssertionException($"query-migrate-capabilities does not list {name}: {all.ToJsonString()}");
        return (StateOf(ReturnPath), StateOf(SwitchoverAck));
    }

    /// <summary>Waits until <paramref name="vm"/>'s stderr contains <paramref name="text"/> (the console logger writes from its own thread).</summary>
    private static async Task WaitForStderrAsync(Vm vm, string text)
    {
        var clock = Stopwatch.StartNew();
        while (!vm.Process.Stderr.Contains(text, StringComparison.Ordinal))
        {
            if (clock.Elapsed > QmpClient.DefaultTimeout)
            {
                throw new AssertionException($"{vm.Name} ({vm.Program}): stderr never contained '{text}'; stderr:\n{vm.Process.Stderr}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Starts <paramref name="program"/> as a destination of <paramref name="memory"/> RAM listening on <paramref name="uri"/>.</summary>
    private async Task<Vm> StartListeningAsync(VmProgram program, string name, string memory, string uri)
    {
        Vm destination = await StartAsync(program, name, [.. Machine(memory), "-incoming", uri]);
        await destination.WaitUntilListeningAsync();
        return destination;
    }

    /// <summary>Starts <paramref name="program"/> as the 64 MiB source "src" with the loader's data (and <paramref name="devices"/>) and waits until it runs.</summary>
    private async Task<Vm> StartRunningSourceAsync(VmProgram program, params string[] devices)
    {
        Vm source = await StartAsync(program, "src", [.. Machine("64M"), .. Loader, .. devices]);
        await source.WaitForRunStateAsync("running");
        return source;
    }

    /// <summary>
    /// Migrates a running <paramref name="from"/> source with the loader's data to a <paramref name="to"/>
    /// destination over TCP with return-path on; once both completed and the destination runs,
    /// returns both VMs and both RAMs.
    /// </summary>
    private async Task<(Vm Source, Vm Destination, byte[] SourceRam, byte[] DestinationRam)> MigrateWithReturnPathAsync(VmProgram from, VmProgram to)
    {
        string uri = NewTcpUri();
        Vm destination = await StartListeningAsync(to, "dst", "64M", uri);
        Vm source = await StartRunningSourceAsync(from);
        await EnableAsync(source, ReturnPath);

        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");
        byte[] sourceRam = await source.ReadRamAsync(0, Ram64M, Temp.File("src.img"));
        byte[] destinationRam = await destination.ReadRamAsync(0, Ram64M, Temp.File("dst.img"));
        return (source, destination, sourceRam, destinationRam);
    }

    /// <summary>
    /// Migrates the running <paramref name="source"/> with return-path on to <paramref name="doomed"/>
    /// (listening on <paramref name="uri"/>), which cannot load: the migration fails with the
    /// destination's SHUT 1, the source runs again with its RAM unchanged and the destination exits
    /// with status 1. Returns the source's RAM from before the migration.
    /// </summary>
    private async Task<byte[]> AssertFailsThroughShutAndRunsOnAsync(Vm source, Vm doomed, string uri)
    {
        byte[] before = await source.ReadRamAsync(0, Ram64M, Temp.File("before.img"));
        await EnableAsync(source, ReturnPath);

        await source.MigrateAsync(uri);
        JsonObject failed = await source.WaitForMigrationEndAsync();

        Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), $"{failed.ToJsonString()}; stderr:\n{source.Process.Stderr}");
        Assert.That(failed["error-desc"]?.GetValue<string>(), Does.Contain(SiblingError), failed.ToJsonString());
        await source.WaitForRunStateAsync("running");
        byte[] after = await source.ReadRamAsync(0, Ram64M, Temp.File("after.img"));
        AssertHoldsLoaderData(before, "the source's RAM before the migration");
        Assert.That(after.AsSpan().SequenceEqual(before), Is.True, GuestRam.FirstDifference(before, after));
        // QEMU 7.2 exits with status 1 after a failed incoming migration; so does MiniVmm.
        Assert.That(await doomed.Process.WaitForExitAsync(), Is.EqualTo(1), doomed.Process.Stderr);
        return before;
    }

    private void AssertHoldsLoaderData(byte[] ram, string what) =>
        Assert.That(ram.AsSpan((int)LoaderAddress, _data.Length).SequenceEqual(_data), Is.True, $"{what}: the loader's data is missing");
}
