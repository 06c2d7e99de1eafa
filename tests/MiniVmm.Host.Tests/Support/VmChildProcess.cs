using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// The plumbing <see cref="MiniVmmProcess"/> and <see cref="QemuProcess"/> share: a child process
/// started with its stdout and stderr captured for failure messages, waits that fail the test
/// when the process exits early or time runs out, signals, and a kill when disposed.
/// </summary>
public abstract class VmChildProcess : IVmProcess
{
    private readonly Process _process;
    private readonly string _program;
    private readonly TimeSpan _timeout;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    /// <summary>
    /// Starts <paramref name="fileName"/> with <paramref name="arguments"/>; <paramref name="program"/>
    /// names it in failure messages, and <paramref name="timeout"/> bounds every wait.
    /// </summary>
    protected VmChildProcess(string fileName, IEnumerable<string> arguments, string program, TimeSpan timeout)
    {
        _program = program;
        _timeout = timeout;
        var start = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        _process = new Process { StartInfo = start };
        _process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        _process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <inheritdoc/>
    public int Pid => _process.Id;

    /// <inheritdoc/>
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

    /// <inheritdoc/>
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

    /// <summary>The arguments that give a VM program a QMP socket at <paramref name="socketPath"/> (as <c>minivmm run</c> and QEMU take them).</summary>
    protected static string[] QmpArguments(string socketPath) => ["-qmp", $"unix:{socketPath},server,nowait"];

    /// <summary>Waits until <paramref name="path"/> exists; fails if the process exits first or time runs out.</summary>
    public async Task WaitForFileAsync(string path)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            if (_process.HasExited)
            {
                Assert.Fail($"{_program} exited with code {_process.ExitCode} before {path} appeared; stderr:\n{Stderr}");
            }

            if (clock.Elapsed > _timeout)
            {
                Assert.Fail($"{path} did not appear within {_timeout.TotalSeconds} s; stderr:\n{Stderr}");
            }

            await Task.Delay(25);
        }
    }

    /// <inheritdoc/>
    public Task<int> WaitForExitAsync() => WaitForExitAsync(_timeout);

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
            Assert.Fail($"{_program} did not exit within {limit.TotalSeconds} s; stderr:\n{Stderr}");
        }

        return _process.ExitCode;
    }

    /// <summary>Writes <paramref name="line"/> to the child's stdin.</summary>
    protected async Task WriteLineAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line);
        await _process.StandardInput.FlushAsync();
    }

    /// <inheritdoc/>
    public async Task SignalAsync(string signal)
    {
        using Process kill = Process.Start("kill", ["-" + signal, Pid.ToString(CultureInfo.InvariantCulture)]);
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
        GC.SuppressFinalize(this);
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
