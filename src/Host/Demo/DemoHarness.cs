using System.Diagnostics;

namespace MiniVmm.Host.Demo;

/// <summary>
/// The demo's Rust guest: a <c>dirty-guest</c> process (the reference harness's example) that
/// connects to one VM's harness socket, its output kept in a log file, killed if it is still
/// there when the demo ends.
/// </summary>
public sealed class DemoHarness : IDisposable
{
    private readonly Process _process;

    private DemoHarness(Process process) => _process = process;

    /// <summary>Starts <paramref name="binary"/> on <paramref name="socket"/> at <paramref name="pagesPerSecond"/>, logging to <paramref name="log"/>.</summary>
    public static DemoHarness Start(string binary, string socket, long pagesPerSecond, string log)
    {
        var start = new ProcessStartInfo(binary)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            ArgumentList = { "--socket", socket, "--rate", pagesPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        };
        Process process = Process.Start(start) ?? throw new IOException($"could not start the guest harness {binary}");
        var writer = new StreamWriter(log) { AutoFlush = true };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (writer) { writer.WriteLine(e.Data); } } };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (writer) { writer.WriteLine(e.Data); } } };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return new DemoHarness(process);
    }

    /// <summary>Kills the process if it did not exit on SHUTDOWN; later calls do nothing.</summary>
    public void Dispose()
    {
        try
        {
            if (!_process.WaitForExit(TimeSpan.FromSeconds(2)))
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }
}
