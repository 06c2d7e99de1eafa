using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// A real <c>qemu-system-x86_64</c> (QEMU 7.2) child process started with the same arguments a
/// <c>minivmm run</c> takes and a QMP socket; stdout and stderr captured; killed when disposed.
/// </summary>
public sealed class QemuProcess : IVmProcess
{
    /// <summary>The QEMU binary the interop tests drive.</summary>
    public const string Binary = "/usr/bin/qemu-system-x86_64";

    /// <summary>How long any single wait lasts before the test fails.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private QemuProcess(Process process)
    {
        _process = process;
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

    /// <summary>Starts QEMU with <paramref name="arguments"/>.</summary>
    public static QemuProcess Start(params string[] arguments)
    {
        var start = new ProcessStartInfo(Binary)
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

        var process = new Process { StartInfo = start };
        var child = new QemuProcess(process);
        process.OutputDataReceived += (_, e) => Append(child._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(child._stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Starts QEMU with a QMP socket at <paramref name="socketPath"/> (as <c>minivmm run</c> is started) and waits for the socket.</summary>
    public static async Task<QemuProcess> StartWithQmpAsync(string socketPath, params string[] extraArguments)
    {
        QemuProcess child = Start([.. extraArguments, "-qmp", $"unix:{socketPath},server,nowait"]);
        var clock = Stopwatch.StartNew();
        while (!File.Exists(socketPath))
        {
            if (child._process.HasExited)
            {
                Assert.Fail($"QEMU exited with code {child._process.ExitCode} before {socketPath} appeared; stderr:\n{child.Stderr}");
            }

            if (clock.Elapsed > DefaultTimeout)
            {
                Assert.Fail($"{socketPath} did not appear within {DefaultTimeout.TotalSeconds} s; stderr:\n{child.Stderr}");
            }

            await Task.Delay(25);
        }

        return child;
    }

    /// <inheritdoc/>
    public async Task<int> WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(DefaultTimeout);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"QEMU did not exit within {DefaultTimeout.TotalSeconds} s; stderr:\n{Stderr}");
        }

        return _process.ExitCode;
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
