using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// Device models with real <c>minivmm run</c> processes: sections keyed by device id (order on
/// the command line does not matter, a missing id is refused by name), <c>-device help</c>, and
/// one-line command-line errors.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DeviceModelProcessTests : VmFixture
{
    private static readonly string[] Machine = ["-M", "none", "-m", "64M", "-nodefaults", "-display", "none"];

    [Test]
    public async Task Devices_listed_in_another_order_on_the_destination_each_get_their_own_state()
    {
        (string file, JsonNode? c0, JsonNode? c1) = await SnapshotAsync("-device", "x-sample,id=c0,seed=1", "-device", "x-sample,id=c1,seed=2");

        Vm destination = await StartAsync("dst", [.. Machine, "-device", "x-sample,id=c1", "-device", "x-sample,id=c0", "-incoming", $"file:{file}"]);
        await destination.WaitForCompletedAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(JsonNode.DeepEquals(await destination.ReturnOfAsync("x-query-device", new() { ["id"] = "c0" }), c0), Is.True);
            Assert.That(JsonNode.DeepEquals(await destination.ReturnOfAsync("x-query-device", new() { ["id"] = "c1" }), c1), Is.True);
            Assert.That(JsonNode.DeepEquals(c0?["vmstate"], c1?["vmstate"]), Is.False, "the two devices must differ for the test to mean anything");
        });
    }

    [Test]
    public async Task A_stream_naming_an_id_the_destination_lacks_is_refused_naming_it()
    {
        (string file, _, _) = await SnapshotAsync("-device", "x-sample,id=c0,seed=1", "-device", "x-sample,id=c1,seed=2");

        await using MiniVmmProcess destination = MiniVmmProcess.Start(
            ["run", .. Machine, "-device", "x-sample,id=c0", "-device", "x-sample,id=c9", "-incoming", $"file:{file}"]);

        Assert.That(await destination.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(destination.Stderr, Does.Contain("Unknown savevm section or instance 'c1/x-sample' 0"));
    }

    [TestCase("x-sample,id=a,foo=1", "Property 'x-sample.foo' not found")]
    [TestCase("nope", "'nope' is not a valid device model name")]
    [TestCase("vfio-emu,id=g,state-size=99999", "state-size must be 1..2047 MiB")]
    [TestCase("x-sample,seed=1", "Parameter 'id' is missing")]
    public async Task A_bad_device_option_is_one_line_on_stderr_and_exit_1(string option, string message)
    {
        await using MiniVmmProcess vm = MiniVmmProcess.Start(["run", .. Machine, "-device", option]);

        Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(1));
        string[] lines = vm.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), vm.Stderr);
        Assert.That(lines[0], Is.EqualTo($"minivmm: -device {option}: {message}"));
    }

    [Test]
    public async Task A_duplicate_id_across_models_is_one_line_and_exit_1()
    {
        await using MiniVmmProcess vm = MiniVmmProcess.Start(["run", .. Machine, "-device", "x-sample,id=d", "-device", "vfio-emu,id=d"]);

        Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(vm.Stderr.Trim(), Is.EqualTo("minivmm: -device vfio-emu,id=d: Duplicate ID 'd' for device"));
    }

    [Test]
    public async Task Device_help_lists_the_models_and_a_models_properties()
    {
        await using MiniVmmProcess models = MiniVmmProcess.Start("run", "-device", "help");
        await using MiniVmmProcess properties = MiniVmmProcess.Start("run", "-device", "vfio-emu,help");

        Assert.That(await models.WaitForExitAsync(), Is.EqualTo(0), models.Stderr);
        Assert.That(await properties.WaitForExitAsync(), Is.EqualTo(0), properties.Stderr);
        Assert.That(models.Stdout, Does.Contain("name \"x-sample\"").And.Contain("name \"vfio-emu\"").And.Contain("name \"loader\""));
        Assert.That(properties.Stdout, Does.Contain("p2p=<bool>").And.Contain("state-size=<uint64>").And.Contain("x-fail=<str>"));
    }

    /// <summary>Starts a source with <paramref name="devices"/>, stops it and saves it to a file; returns the file and c0's and c1's x-query-device.</summary>
    private async Task<(string File, JsonNode? C0, JsonNode? C1)> SnapshotAsync(params string[] devices)
    {
        Vm source = await StartAsync("src", [.. Machine, .. devices]);
        await source.ReturnOfAsync("stop");
        JsonNode? c0 = await source.ReturnOfAsync("x-query-device", new() { ["id"] = "c0" });
        JsonNode? c1 = await source.ReturnOfAsync("x-query-device", new() { ["id"] = "c1" });
        string file = Temp.File("snapshot.bin");
        await source.MigrateAsync($"file:{file}");
        await source.WaitForCompletedAsync();
        return (file, c0, c1);
    }
}
