namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// The fault-injecting relay (<c>tests/MiniVmm.FaultRelay</c>) as a real process, optionally in a
/// network namespace: <see cref="InjectAsync"/> writes a fault to its stdin (pass, delay:MS,
/// throttle:BPS, stall, cut, stall-after:N, cut-after:N) and waits for its acknowledgement.
/// </summary>
public sealed class FaultRelayProcess : VmChildProcess
{
    private FaultRelayProcess(string? networkNamespace, string[] arguments)
        : base(
            networkNamespace is null ? Dotnet() : "ip",
            networkNamespace is null ? [RelayDll, .. arguments] : ["netns", "exec", networkNamespace, Dotnet(), RelayDll, .. arguments],
            "minivmm-fault-relay",
            TimeSpan.FromSeconds(20))
    {
    }

    private static string RelayDll => Path.Combine(AppContext.BaseDirectory, "minivmm-fault-relay.dll");

    /// <summary>Starts the relay listening on <paramref name="listen"/> and forwarding to <paramref name="connect"/> (null: a sink), waits until it listens.</summary>
    public static async Task<FaultRelayProcess> StartAsync(string? networkNamespace, string listen, string? connect, params string[] extra)
    {
        string[] arguments = ["--listen", listen, .. connect is null ? Array.Empty<string>() : ["--connect", connect], .. extra];
        var relay = new FaultRelayProcess(networkNamespace, arguments);
        await relay.WaitForOutputAsync("listening ");
        return relay;
    }

    /// <summary>Sets the relay's fault for every open and later connection.</summary>
    public async Task InjectAsync(string fault)
    {
        int before = CountOf("fault ");
        await WriteLineAsync(fault);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (CountOf("fault ") == before)
        {
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), $"the relay did not take '{fault}': {Stdout}{Stderr}");
            await Task.Delay(10);
        }
    }

    private int CountOf(string marker) => Stdout.Split('\n').Count(line => line.StartsWith(marker, StringComparison.Ordinal));

    private async Task WaitForOutputAsync(string marker)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (CountOf(marker) == 0)
        {
            Assert.That(HasExited, Is.False, $"the relay exited: {Stderr}");
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), $"the relay did not start: {Stderr}");
            await Task.Delay(20);
        }
    }

    private static string Dotnet() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath ? hostPath : "dotnet";
}
