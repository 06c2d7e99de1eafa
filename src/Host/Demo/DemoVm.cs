using System.Diagnostics;

namespace MiniVmm.Host.Demo;

/// <summary>
/// One <c>minivmm run</c> child process of the demo, with its QMP client and a log file that
/// keeps its stderr out of the demo's output (shown when something goes wrong).
/// </summary>
public sealed class DemoVm : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;

    private DemoVm(string name, Process process, string logPath, DemoQmpClient qmp)
    {
        Name = name;
        _process = process;
        LogPath = logPath;
        Qmp = qmp;
    }

    /// <summary>"source" or "destination".</summary>
    public string Name { get; }

    /// <summary>The QMP connection (negotiated).</summary>
    public DemoQmpClient Qmp { get; }

    /// <summary>Where the child's stderr goes.</summary>
    public string LogPath { get; }

    /// <summary>
    /// Starts <c>minivmm run ARGS -qmp unix:DIR/NAME.sock,server,nowait</c> and connects to it;
    /// <paramref name="beforeQmp"/> runs once the process is up, before QMP is negotiated (a
    /// VM with a guest harness waits for it before it starts).
    /// </summary>
    public static async Task<DemoVm> StartAsync(
        string name, string directory, IEnumerable<string> arguments, CancellationToken cancellation, Action? beforeQmp = null)
    {
        string socket = Path.Combine(directory, $"{name}.sock");
        string log = Path.Combine(directory, $"{name}.log");
        string host = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(host) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "minivmm.dll"));
        }

        start.ArgumentList.Add("run");
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.ArgumentList.Add("-qmp");
        start.ArgumentList.Add($"unix:{socket},server=on,wait=off");
        Process process = Process.Start(start) ?? throw new IOException($"could not start the {name} VM");
        var logWriter = new StreamWriter(log) { AutoFlush = true };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (logWriter) { logWriter.WriteLine(e.Data); } } };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (logWriter) { logWriter.WriteLine(e.Data); } } };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        var clock = Stopwatch.StartNew();
        while (!File.Exists(socket))
        {
            if (process.HasExited)
            {
                throw new IOException($"the {name} VM exited with code {process.ExitCode} before opening QMP (log: {log})");
            }

            if (clock.Elapsed > StartTimeout)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"the {name} VM opened no QMP socket within {StartTimeout.TotalSeconds} s (log: {log})");
            }

            await Task.Delay(25, cancellation).ConfigureAwait(false);
        }

        beforeQmp?.Invoke();
        (DemoQmpClient qmp, _) = await DemoQmpClient.ConnectAsync(socket, cancellation).ConfigureAwait(false);
        await qmp.ReturnOfAsync("qmp_capabilities", null, cancellation).ConfigureAwait(false);
        return new DemoVm(name, process, log, qmp);
    }

    /// <summary>Asks the VM to quit and waits a little; kills it if it does not go.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await Qmp.ExecuteAsync("quit", quick.Token).ConfigureAwait(false);
                await _process.WaitForExitAsync(quick.Token).ConfigureAwait(false);
            }
        }
        catch (Exception error) when (error is IOException or OperationCanceledException or InvalidOperationException)
        {
            // Fall through to the kill below.
        }
        finally
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await Qmp.DisposeAsync().ConfigureAwait(false);
            _process.Dispose();
        }
    }
}
