using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Demo;

/// <summary>
/// What <c>minivmm demo</c> shows until the live-migration demo exists: a child
/// <c>minivmm run -M none -m 64M -S -qmp ...</c> driven over QMP through query-status, cont, stop
/// and quit, each step printed and checked.
/// </summary>
public sealed class QmpDemo(TextWriter output, TimeProvider time)
{
    private static readonly TimeSpan SocketTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan DemoTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Runs the demo; 0 when every step behaved.</summary>
    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        await output.WriteLineAsync("The live-migration demo is not built yet; showing what exists: a minivmm VM driven over QMP.").ConfigureAwait(false);
        string directory = Directory.CreateTempSubdirectory("minivmm-demo-").FullName;
        string socketPath = Path.Combine(directory, "qmp.sock");
        using Process child = StartChild(
            ["run", "-M", "none", "-m", "64M", "-S", "-nodefaults", "-display", "none", "-qmp", $"unix:{socketPath},server=on,wait=off"]);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            timeout.CancelAfter(DemoTimeout);
            bool ok = await DriveAsync(child, socketPath, timeout.Token).ConfigureAwait(false);
            await output.WriteLineAsync(ok ? "demo: every step behaved" : "demo: FAILED").ConfigureAwait(false);
            return ok ? 0 : 1;
        }
        catch (Exception error) when (error is OperationCanceledException or IOException or SocketException or InvalidDataException or TimeoutException)
        {
            await output.WriteLineAsync($"demo: FAILED: {error.Message}").ConfigureAwait(false);
            return 1;
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill(entireProcessTree: true);
            }

            Directory.Delete(directory, recursive: true);
        }
    }

    private async Task<bool> DriveAsync(Process child, string socketPath, CancellationToken cancellation)
    {
        await Step($"started minivmm (pid {child.Id}); waiting for {socketPath}").ConfigureAwait(false);
        await WaitForSocketAsync(child, socketPath, cancellation).ConfigureAwait(false);
        (DemoQmpClient client, JsonObject greeting) = await DemoQmpClient.ConnectAsync(socketPath, cancellation).ConfigureAwait(false);
        await using (client.ConfigureAwait(false))
        {
            await Step($"greeting {greeting.ToJsonString()}").ConfigureAwait(false);
            bool ok = await ExpectReturn(client, "qmp_capabilities", null, cancellation).ConfigureAwait(false);
            ok &= await ExpectStatus(client, "prelaunch", cancellation).ConfigureAwait(false);
            ok &= await ExpectReturn(client, "cont", "RESUME", cancellation).ConfigureAwait(false);
            ok &= await ExpectStatus(client, "running", cancellation).ConfigureAwait(false);
            ok &= await ExpectReturn(client, "stop", "STOP", cancellation).ConfigureAwait(false);
            ok &= await ExpectStatus(client, "paused", cancellation).ConfigureAwait(false);
            ok &= await ExpectReturn(client, "quit", "SHUTDOWN", cancellation).ConfigureAwait(false);
            await child.WaitForExitAsync(cancellation).ConfigureAwait(false);
            await Step($"minivmm exited with code {child.ExitCode}").ConfigureAwait(false);
            bool socketGone = !File.Exists(socketPath);
            await Step(socketGone ? "its QMP socket file is gone" : "its QMP socket file is still there").ConfigureAwait(false);
            return ok && child.ExitCode == 0 && socketGone;
        }
    }

    private async Task<bool> ExpectReturn(DemoQmpClient client, string command, string? expectedEvent, CancellationToken cancellation)
    {
        JsonObject reply = await client.ExecuteAsync(command, cancellation).ConfigureAwait(false);
        await Step($"{command} -> {reply.ToJsonString()}").ConfigureAwait(false);
        if (expectedEvent is not null)
        {
            JsonObject seen = await client.WaitForEventAsync(expectedEvent, cancellation).ConfigureAwait(false);
            await Step($"  event {seen.ToJsonString()}").ConfigureAwait(false);
        }

        return reply.ContainsKey("return");
    }

    private async Task<bool> ExpectStatus(DemoQmpClient client, string expected, CancellationToken cancellation)
    {
        JsonObject reply = await client.ExecuteAsync("query-status", cancellation).ConfigureAwait(false);
        string? status = (string?)reply["return"]?["status"];
        await Step($"query-status -> {status} (expected {expected})").ConfigureAwait(false);
        return status == expected;
    }

    private async Task WaitForSocketAsync(Process child, string socketPath, CancellationToken cancellation)
    {
        long started = time.GetTimestamp();
        while (!File.Exists(socketPath))
        {
            if (child.HasExited)
            {
                throw new IOException($"minivmm exited with code {child.ExitCode} before opening its QMP socket");
            }

            if (time.GetElapsedTime(started) > SocketTimeout)
            {
                throw new TimeoutException($"no QMP socket at {socketPath} after {SocketTimeout.TotalSeconds} s");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), time, cancellation).ConfigureAwait(false);
        }
    }

    private static Process StartChild(IEnumerable<string> arguments)
    {
        string host = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "minivmm.dll"));
        }

        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start) ?? throw new IOException($"could not start {host}");
    }

    private Task Step(string text) => output.WriteLineAsync($"demo: {text}");
}
