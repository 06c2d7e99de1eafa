using System.Text.Json.Nodes;

namespace MiniVmm.Host.Tests.Support;

/// <summary>Checks on migrated <c>-device vfio-emu</c> devices through <c>x-query-device</c>.</summary>
public static class MigratedVfioDevices
{
    /// <summary>
    /// For each device in <paramref name="ids"/>: the source's is stopped, and the destination's
    /// loaded exactly the source's state at the switchover and runs.
    /// </summary>
    public static async Task AssertArrivedAsync(Vm source, Vm destination, params string[] ids)
    {
        foreach (string id in ids)
        {
            JsonNode? sent = (await source.ReturnOfAsync("x-query-device", new() { ["id"] = id }))?["info"];
            JsonNode? received = (await destination.ReturnOfAsync("x-query-device", new() { ["id"] = id }))?["info"];
            Assert.Multiple(() =>
            {
                Assert.That(sent?["device-state"]?.GetValue<string>(), Is.EqualTo("stop"), $"source {id}: {sent?.ToJsonString()}");
                Assert.That(received?["loaded-digest"]?.GetValue<string>(), Is.EqualTo(sent?["digest"]?.GetValue<string>()).And.Not.Null,
                    $"{id}: source {sent?.ToJsonString()}; destination {received?.ToJsonString()}");
                Assert.That(received?["device-state"]?.GetValue<string>(), Is.EqualTo("running"), $"destination {id}");
            });
        }
    }
}
