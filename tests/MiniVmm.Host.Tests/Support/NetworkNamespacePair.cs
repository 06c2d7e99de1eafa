using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// Two hosts on one machine: two network namespaces joined by a veth pair
/// (<see cref="SourceAddress"/> in <see cref="Source"/>, <see cref="DestinationAddress"/> in
/// <see cref="Destination"/>, loopback up in both), made with <c>ip</c> as root under names unique
/// to this process and removed when disposed (deleting a namespace deletes its veth end). Pairs
/// left by a test process that died are removed when the next pair is made.
/// </summary>
public sealed partial class NetworkNamespacePair : IDisposable
{
    /// <summary>The source host's address on the veth link.</summary>
    public const string SourceAddress = "10.99.0.1";

    /// <summary>The destination host's address on the veth link.</summary>
    public const string DestinationAddress = "10.99.0.2";

    private const string Prefix = "mvfault";

    private readonly List<string> _namespaces = [];
    private bool _disposed;

    private NetworkNamespacePair(string unique)
    {
        Source = $"{Prefix}{Environment.ProcessId}n{unique}s";
        Destination = $"{Prefix}{Environment.ProcessId}n{unique}d";
        SourceLink = $"mvf{unique}s";
        DestinationLink = $"mvf{unique}d";
    }

    /// <summary>The source host's namespace.</summary>
    public string Source { get; }

    /// <summary>The destination host's namespace.</summary>
    public string Destination { get; }

    /// <summary>The veth end in <see cref="Source"/>.</summary>
    public string SourceLink { get; }

    /// <summary>The veth end in <see cref="Destination"/>.</summary>
    public string DestinationLink { get; }

    /// <summary>
    /// Makes the pair, or ends the test as ignored, with the reason, where namespaces are not
    /// allowed (not root, no <c>ip</c>, no CAP_SYS_ADMIN in a container).
    /// </summary>
    public static NetworkNamespacePair CreateOrIgnore()
    {
        if (Environment.UserName != "root" && Run("id", "-u").Output.Trim() != "0")
        {
            Assert.Ignore("network namespaces need root: run the fault tests as root");
        }

        RemoveLeftovers();
        var pair = new NetworkNamespacePair(Guid.NewGuid().ToString("N")[..8]);
        try
        {
            pair.Create();
            return pair;
        }
        catch (InvalidOperationException error)
        {
            pair.Dispose();
            Assert.Ignore($"network namespaces are not allowed here: {error.Message}");
            throw;
        }
    }

    /// <summary>Sets the veth link down (both ends) or up again.</summary>
    public void SetLink(bool up)
    {
        string state = up ? "up" : "down";
        Ip("-n", Source, "link", "set", SourceLink, state);
        Ip("-n", Destination, "link", "set", DestinationLink, state);
    }

    /// <summary>
    /// Whether a TCP connect from <see cref="Source"/> to <paramref name="address"/> port 9 gets an
    /// answer (a refusal counts: the packet went through) within a second.
    /// </summary>
    public bool CanReach(string address)
    {
        (int code, string output) = Run("ip", "netns", "exec", Source, "timeout", "1", "bash", "-c", $"exec 3<>/dev/tcp/{address}/9");
        return code != 124 && output.Contains("refused", StringComparison.OrdinalIgnoreCase) || code == 0;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        for (int i = _namespaces.Count - 1; i >= 0; i--)
        {
            Run("ip", "netns", "del", _namespaces[i]);
        }
    }

    /// <summary>Whether <paramref name="name"/> exists (for the test that checks the clean-up).</summary>
    public static bool Exists(string name) =>
        Run("ip", "netns", "list").Output.Split('\n').Any(line => line.Split(' ')[0] == name);

    private void Create()
    {
        foreach (string name in new[] { Source, Destination })
        {
            Ip("netns", "add", name);
            _namespaces.Add(name);
            Ip("-n", name, "link", "set", "lo", "up");
        }

        Ip("-n", Source, "link", "add", SourceLink, "type", "veth", "peer", "name", DestinationLink, "netns", Destination);
        Ip("-n", Source, "addr", "add", SourceAddress + "/24", "dev", SourceLink);
        Ip("-n", Destination, "addr", "add", DestinationAddress + "/24", "dev", DestinationLink);
        SetLink(up: true);
    }

    private static void RemoveLeftovers()
    {
        foreach (string line in Run("ip", "netns", "list").Output.Split('\n'))
        {
            Match match = LeftoverName().Match(line);
            if (match.Success && !IsAlive(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)))
            {
                Run("ip", "netns", "del", match.Value);
            }
        }
    }

    private static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}");

    private static void Ip(params string[] arguments)
    {
        (int code, string output) = Run("ip", arguments);
        if (code != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', arguments)}: {output.Trim()}");
        }
    }

    private static (int Code, string Output) Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            using Process process = Process.Start(start)!;
            string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, output);
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            throw new InvalidOperationException($"{program}: {error.Message}", error);
        }
    }

    [GeneratedRegex(@"^mvfault(\d+)n[0-9a-f]+[sd]")]
    private static partial Regex LeftoverName();
}
