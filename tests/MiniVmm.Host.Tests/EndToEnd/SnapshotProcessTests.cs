using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// Snapshots of a stopped <c>minivmm run</c> through QMP <c>migrate</c>, loaded by a second
/// <c>minivmm run</c> with <c>-incoming</c>: real processes, real files and pipes.
/// </summary>
[TestFixture]
public sealed class SnapshotProcessTests
{
    private static readonly string[] SourceDevices =
        ["-device", "x-sample,id=uart,seed=7", "-device", "x-sample,id=dma,seed=10"];

    private static readonly string[] BlankDevices =
        ["-device", "x-sample,id=uart", "-device", "x-sample,id=dma"];

    private TemporaryDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TemporaryDirectory();

    [TearDown]
    public void RemoveDirectory() => _directory.Dispose();

    [Test]
    public async Task Snapshot_to_a_file_loads_into_a_second_process_with_equal_device_state()
    {
        string file = _directory.File("snapshot.bin");
        (JsonNode? uart, JsonNode? dma) = await SaveAsync($"file:{file}", stopFirst: true);

        string socket = _directory.File("dst.sock");
        await using MiniVmmProcess destination = await MiniVmmProcess.StartWithQmpAsync(
            socket, ["-M", "none", "-m", "64M", .. BlankDevices, "-incoming", $"file:{file}"]);
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(socket);
        JsonObject info = await client.WaitForMigrationEndAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(info["status"]?.GetValue<string>(), Is.EqualTo("completed"), destination.Stderr);
            Assert.That(JsonNode.DeepEquals(await client.ReturnOfAsync("x-query-device", new() { ["id"] = "uart" }), uart));
            Assert.That(JsonNode.DeepEquals(await client.ReturnOfAsync("x-query-device", new() { ["id"] = "dma" }), dma));
        });

        // The stream carried "paused" in globalstate: the destination adopts it.
        await client.WaitForRunStateAsync("paused");
    }

    [Test]
    public async Task Snapshot_through_exec_loads_with_exec_and_keeps_prelaunch()
    {
        string file = _directory.File("snapshot.bin");
        (JsonNode? uart, _) = await SaveAsync($"exec:cat > {file}", stopFirst: false);

        string socket = _directory.File("dst.sock");
        await using MiniVmmProcess destination = await MiniVmmProcess.StartWithQmpAsync(
            socket, ["-M", "none", "-m", "64M", .. BlankDevices, "-incoming", $"exec:cat {file}"]);
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(socket);

        Assert.That((await client.WaitForMigrationEndAsync())["status"]?.GetValue<string>(), Is.EqualTo("completed"), destination.Stderr);
        Assert.That(JsonNode.DeepEquals(await client.ReturnOfAsync("x-query-device", new() { ["id"] = "uart" }), uart));
        await client.WaitForRunStateAsync("prelaunch");
    }

    [Test]
    public async Task Incoming_defer_waits_for_migrate_incoming()
    {
        string file = _directory.File("snapshot.bin");
        (JsonNode? uart, _) = await SaveAsync($"file:{file}", stopFirst: true);

        string socket = _directory.File("dst.sock");
        await using MiniVmmProcess destination = await MiniVmmProcess.StartWithQmpAsync(
            socket, ["-M", "none", "-m", "64M", .. BlankDevices, "-incoming", "defer"]);
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(socket);

        Assert.That((await client.ReturnOfAsync("query-status"))?["status"]?.GetValue<string>(), Is.EqualTo("inmigrate"));
        Assert.That(JsonText.Of((await client.ReturnOfAsync("query-migrate"))!), Is.EqualTo("{}"));
        await client.ReturnOfAsync("migrate-incoming", new() { ["uri"] = $"file:{file}" });

        Assert.That((await client.WaitForMigrationEndAsync())["status"]?.GetValue<string>(), Is.EqualTo("completed"));
        Assert.That(JsonNode.DeepEquals(await client.ReturnOfAsync("x-query-device", new() { ["id"] = "uart" }), uart));
        JsonObject again = await client.ExecuteAsync("migrate-incoming", new() { ["uri"] = $"file:{file}" });
        Assert.That(again["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("The incoming migration has already been started"));
    }

    [Test]
    public async Task A_corrupt_snapshot_makes_the_destination_exit_1_naming_the_error()
    {
        string file = _directory.File("snapshot.bin");
        await SaveAsync($"file:{file}", stopFirst: true);
        byte[] bytes = await File.ReadAllBytesAsync(file);
        bytes[0x09 + 4] ^= 0xff; // first byte of the machine name "none"
        await File.WriteAllBytesAsync(file, bytes);

        MiniVmmProcess destination = MiniVmmProcess.Start(
            ["run", "-M", "none", "-m", "64M", .. BlankDevices, "-incoming", $"file:{file}"]);
        await using (destination)
        {
            int exit = await destination.WaitForExitAsync();
            Assert.That(exit, Is.EqualTo(1));
            Assert.That(destination.Stderr, Does.Contain("load of migration failed: Machine type received is"));
        }
    }

    [Test]
    public async Task A_failing_exec_command_fails_the_migration_and_the_source_keeps_its_state()
    {
        string socket = _directory.File("src.sock");
        await using MiniVmmProcess source = await MiniVmmProcess.StartWithQmpAsync(socket, ["-M", "none", "-m", "64M", "-S", .. SourceDevices]);
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(socket);

        await client.ReturnOfAsync("migrate", new() { ["uri"] = "exec:exit 3" });
        JsonObject info = await client.WaitForMigrationEndAsync();

        Assert.That(info["status"]?.GetValue<string>(), Is.EqualTo("failed"));
        Assert.That(info["error-desc"]?.GetValue<string>(), Is.Not.Empty);
        await client.WaitForRunStateAsync("prelaunch");
    }

    [Test]
    public async Task Migrate_with_a_bad_uri_or_twice_after_completion_gives_QEMUs_errors()
    {
        string socket = _directory.File("src.sock");
        await using MiniVmmProcess source = await MiniVmmProcess.StartWithQmpAsync(socket, ["-M", "none", "-m", "64M", "-S"]);
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(socket);

        JsonObject bad = await client.ExecuteAsync("migrate", new() { ["uri"] = "ftp:somewhere" });
        Assert.That(bad["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("Parameter 'uri' expects a valid migration protocol"));

        await client.ReturnOfAsync("migrate", new() { ["uri"] = $"file:{_directory.File("a.bin")}" });
        Assert.That((await client.WaitForMigrationEndAsync())["status"]?.GetValue<string>(), Is.EqualTo("completed"));
        await client.WaitForRunStateAsync("postmigrate");
        JsonObject again = await client.ExecuteAsync("migrate", new() { ["uri"] = $"file:{_directory.File("b.bin")}" });
        Assert.That(again["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("Can't migrate the vm that was paused due to previous migration"));
    }

    /// <summary>Runs a source with two sample devices, snapshots it to <paramref name="uri"/>, returns the devices' state.</summary>
    private async Task<(JsonNode? Uart, JsonNode? Dma)> SaveAsync(string uri, bool stopFirst)
    {
        string socket = _directory.File("src.sock");
        string[] start = stopFirst ? [] : ["-S"];
        await using MiniVmmProcess source = await MiniVmmProcess.StartWithQmpAsync(socket, ["-M", "none", "-m", "64M", .. start, .. SourceDevices]);
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(socket);
        if (stopFirst)
        {
            await client.ReturnOfAsync("stop");
        }

        JsonNode? uart = await client.ReturnOfAsync("x-query-device", new() { ["id"] = "uart" });
        JsonNode? dma = await client.ReturnOfAsync("x-query-device", new() { ["id"] = "dma" });
        await client.ReturnOfAsync("migrate", new() { ["uri"] = uri });
        JsonObject info = await client.WaitForMigrationEndAsync();
        Assert.That(info["status"]?.GetValue<string>(), Is.EqualTo("completed"), $"{info.ToJsonString()} {source.Stderr}");
        await client.WaitForRunStateAsync("postmigrate");
        await client.ReturnOfAsync("quit");
        await source.WaitForExitAsync();
        return (uart, dma);
    }
}
