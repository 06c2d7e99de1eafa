using System.Diagnostics;
using System.Text;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// A real <c>minivmm</c> child process (<c>dotnet minivmm.dll ...</c> from the test output
/// directory), its stdout and stderr captured for failure messages, killed when disposed.
/// </summary>
public sealed class MiniVmmProcess : IVmProcess
{
    /// <summary>How long any single wait lasts before the test fails.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private MiniVmmProcess(Process process)
    {
        _process = process;
    }

    /// <summary>The process id.</summary>
    public int Pid => _process.Id;

    /// <summary>Whether the process has ended.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Everything written to stdout so far.</summary>
    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    /// <summary>Everything written to stderr so far.</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Starts <c>minivmm</c> with <paramref name="arguments"/>.</summary>
    public static MiniVmmProcess Start(params string[] arguments)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath ? hostPath : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "minivmm.dll"));
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start };
        var child = new MiniVmmProcess(process);
        process.OutputDataReceived += (_, e) => Append(child._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(child._stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Starts <c>minivmm run</c> with a QMP socket at <paramref name="socketPath"/> and waits for the socket.</summary>
    public static async Task<MiniVmmProcess> StartWithQmpAsync(string socketPath, params string[] extraArguments)
    {
        MiniVmmProcess child = Start(["run", .. extraArguments, "-qmp", $"unix:{socketPath},server,nowait"]);
        await child.WaitForFileAsync(socketPath);
        return child;
    }

    /// <summary>Waits until <paramref name="path"/> exists; fails if the process exits first or time runs out.</summary>
    public async Task WaitForFileAsync(string path)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            if (_process.HasExited)
            {
                Assert.Fail($"minivmm exited with code {_process.ExitCode} before {path} appeared; stderr:\n{Stderr}");
            }

            if (clock.Elapsed > DefaultTimeout)
            {
                Assert.Fail($"{path} did not appear within {DefaultTimeout.TotalSeconds} s; stderr:\n{Stderr}");
            }

            await Task.Delay(25);
        }
    }

    /// <summary>Waits for the process to exit and returns its exit code.</summary>
    public Task<int> WaitForExitAsync() => WaitForExitAsync(DefaultTimeout);

    /// <summary>Waits up to <paramref name="limit"/> for the process to exit and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"minivmm did not exit within {limit.TotalSeconds} s; stderr:\n{Stderr}");
        }

        return _process.ExitCode;
    }

    /// <summary>Sends a POSIX signal to the process through <c>kill</c>.</summary>
    public async Task SignalAsync(string signal)
    {
        using Process kill = Process.Start("kill", ["-" + signal, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static void Append(StringBuilder text, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (text)
        {
            text.AppendLine(line);
        }
    }
}
