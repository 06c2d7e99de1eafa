using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>Auto-converge between two real processes: a guest that dirties faster than the link.</summary>
[TestFixture]
public sealed class AutoConvergeProcessTests
{
    [Test]
    public async Task A_guest_faster_than_the_link_is_throttled_until_the_migration_converges()
    {
        using var directory = new TemporaryDirectory();
        int port = FreePort();
        string[] machine = ["-M", "none", "-m", "128M", "-guest", "dirty,rate=100000"];
        await using MiniVmmProcess destination = await MiniVmmProcess.StartWithQmpAsync(
            directory.File("d.sock"), [.. machine, "-incoming", $"tcp:127.0.0.1:{port}"]);
        await using MiniVmmProcess source = await MiniVmmProcess.StartWithQmpAsync(directory.File("s.sock"), machine);
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(directory.File("s.sock"));
        await using QmpClient target = await QmpClient.ConnectAndNegotiateAsync(directory.File("d.sock"));

        await client.ReturnOfAsync("migrate-set-capabilities", new()
        {
            ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "auto-converge", ["state"] = true }),
        });
        // QEMU's default 128 MiB/s against a guest dirtying ~400 MB/s: it converges only once throttled.
        await client.ReturnOfAsync("migrate-set-parameters", new() { ["max-bandwidth"] = 128L << 20, ["downtime-limit"] = 300 });
        await client.ReturnOfAsync("migrate", new() { ["uri"] = $"tcp:127.0.0.1:{port}" });

        int highestThrottle = 0;
        string status = "";
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            JsonNode? info = await client.ReturnOfAsync("query-migrate");
            status = info?["status"]?.GetValue<string>() ?? "";
            highestThrottle = Math.Max(highestThrottle, info?["cpu-throttle-percentage"]?.GetValue<int>() ?? 0);
            if (status is "completed" or "failed" or "cancelled")
            {
                break;
            }

            await Task.Delay(100);
        }

        Assert.That(status, Is.EqualTo("completed"), source.Stderr);
        Assert.That(highestThrottle, Is.GreaterThanOrEqualTo(20), "auto-converge throttled the guest (cpu-throttle-initial is 20)");
        await target.WaitForMigrationEndAsync();
        await target.ReturnOfAsync("stop");
        JsonNode? check = await target.ReturnOfAsync("x-check-guest-memory");
        Assert.That(check?["consistent"]?.GetValue<bool>(), Is.True, check?["description"]?.GetValue<string>());
        JsonNode? after = await client.ReturnOfAsync("query-migrate");
        Assert.That(after?["cpu-throttle-percentage"], Is.Null, "the throttle ends with the migration");
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
