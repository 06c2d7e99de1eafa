using System.Diagnostics;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Tests.Support;

/// <summary>Waits for migrations and run states over QMP, with a deadline.</summary>
public static class MigrationPolling
{
    /// <summary>Polls <c>query-migrate</c> until the status is final (completed, failed, cancelled) and returns that reply.</summary>
    public static async Task<JsonObject> WaitForMigrationEndAsync(this QmpClient client, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            JsonObject reply = await client.ExecuteAsync("query-migrate");
            JsonObject info = reply["return"]?.AsObject() ?? throw new AssertionException($"query-migrate failed: {reply.ToJsonString()}");
            string? status = info["status"]?.GetValue<string>();
            if (status is "completed" or "failed" or "cancelled")
            {
                return info;
            }

            if (clock.Elapsed > (timeout ?? TimeSpan.FromSeconds(60)))
            {
                throw new AssertionException($"migration did not finish; last query-migrate: {info.ToJsonString()}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Polls <c>query-status</c> until the run state is <paramref name="expected"/>.</summary>
    public static async Task WaitForRunStateAsync(this QmpClient client, string expected, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        string? status = null;
        while (clock.Elapsed < (timeout ?? TimeSpan.FromSeconds(60)))
        {
            status = (await client.ExecuteAsync("query-status"))["return"]?["status"]?.GetValue<string>();
            if (status == expected)
            {
                return;
            }

            await Task.Delay(20);
        }

        throw new AssertionException($"run state stayed '{status}', expected '{expected}'");
    }

    /// <summary>Runs a command and returns its <c>return</c> member, failing the test on an error reply.</summary>
    public static async Task<JsonNode?> ReturnOfAsync(this QmpClient client, string name, JsonObject? arguments = null)
    {
        JsonObject reply = await client.ExecuteAsync(name, arguments);
        if (reply["error"] is { } error)
        {
            throw new AssertionException($"{name} failed: {error.ToJsonString()}");
        }

        return reply["return"];
    }

    /// <summary>
    /// Runs a command with <paramref name="descriptor"/> passed alongside (SCM_RIGHTS) and returns
    /// its <c>return</c> member, failing the test on an error reply.
    /// </summary>
    public static async Task<JsonNode?> ReturnOfWithDescriptorAsync(
        this QmpClient client, string name, JsonObject? arguments, System.Runtime.InteropServices.SafeHandle descriptor)
    {
        JsonObject reply = await client.ExecuteWithDescriptorAsync(name, arguments, descriptor);
        if (reply["error"] is { } error)
        {
            throw new AssertionException($"{name} failed: {error.ToJsonString()}");
        }

        return reply["return"];
    }
}
