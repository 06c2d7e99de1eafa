namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// A real <c>minivmm</c> child process (<c>dotnet minivmm.dll ...</c> from the test output
/// directory), its stdout and stderr captured for failure messages, killed when disposed.
/// </summary>
public sealed class MiniVmmProcess : VmChildProcess
{
    /// <summary>How long any single wait lasts before the test fails.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    private MiniVmmProcess(string[] arguments)
        : base(DotnetHost(), [Path.Combine(AppContext.BaseDirectory, "minivmm.dll"), .. arguments], "minivmm", DefaultTimeout)
    {
    }

    private MiniVmmProcess(string networkNamespace, string[] arguments)
        : base("ip", ["netns", "exec", networkNamespace, DotnetHost(), Path.Combine(AppContext.BaseDirectory, "minivmm.dll"), .. arguments],
            $"minivmm (netns {networkNamespace})", DefaultTimeout)
    {
    }

    /// <summary>Starts <c>minivmm</c> with <paramref name="arguments"/>.</summary>
    public static MiniVmmProcess Start(params string[] arguments) => new(arguments);

    /// <summary>Starts <c>minivmm run</c> with a QMP socket at <paramref name="socketPath"/> and waits for the socket.</summary>
    public static async Task<MiniVmmProcess> StartWithQmpAsync(string socketPath, params string[] extraArguments)
    {
        MiniVmmProcess child = Start(["run", .. extraArguments, .. QmpArguments(socketPath)]);
        await child.WaitForFileAsync(socketPath);
        return child;
    }

    /// <summary>
    /// Starts <c>minivmm run</c> inside the network namespace <paramref name="networkNamespace"/>
    /// (<c>ip netns exec</c>, which execs, so <see cref="VmChildProcess.Pid"/> is minivmm's) with
    /// a QMP socket at <paramref name="socketPath"/> (a path socket, reachable from any namespace).
    /// </summary>
    public static async Task<MiniVmmProcess> StartWithQmpInNamespaceAsync(string networkNamespace, string socketPath, params string[] extraArguments)
    {
        var child = new MiniVmmProcess(networkNamespace, ["run", .. extraArguments, .. QmpArguments(socketPath)]);
        await child.WaitForFileAsync(socketPath);
        return child;
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath ? hostPath : "dotnet";
}
