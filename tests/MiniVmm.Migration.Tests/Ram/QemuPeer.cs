using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>
/// A QEMU 7.2 <c>-M none</c> process with its QMP socket in a scratch directory; disposing it
/// quits or kills that process (only the one this object started) and deletes the directory.
/// </summary>
internal sealed class QemuPeer : IDisposable
{
    public const string Binary = "/usr/bin/qemu-system-x86_64";

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private QmpClient? _qmp;

    public QemuPeer(string directory, long ramSize, IEnumerable<string> extraArguments)
    {
        Directory = directory;
        var start = new ProcessStartInfo(Binary)
        {
            WorkingDirectory = directory,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[]
                 {
                     "-M", "none", "-m", $"{ramSize >> 20}M", "-nodefaults", "-display", "none", "-S",
                     "-qmp", $"unix:{QmpSocket},server,nowait",
                 }.Concat(extraArguments))
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException($"{Binary} did not start");
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(e.Data);
                }
            }
        };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
    }

    public string Directory { get; }

    public string QmpSocket => Path.Combine(Directory, "qmp.sock");

    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    public QmpClient Qmp => _qmp ??= QmpClient.Connect(QmpSocket, TimeSpan.FromSeconds(10));

    /// <summary>Polls query-migrate until completed; failed, a timeout or the process exiting fails the test.</summary>
    public JsonNode WaitForMigration(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            Assert.That(HasExited, Is.False, $"QEMU exited: {StandardError}");
            JsonNode info = Qmp.Execute("query-migrate")!;
            string? status = info["status"]?.GetValue<string>();
            if (status == "completed")
            {
                return info;
            }

            Assert.That(status, Is.Not.EqualTo("failed"), $"migration failed: {info.ToJsonString()} {StandardError}");
            Assert.That(clock.Elapsed, Is.LessThan(timeout), $"migration still '{status}' after {timeout}");
            Thread.Sleep(20);
        }
    }

    /// <summary>QMP pmemsave of [<paramref name="address"/>, +<paramref name="size"/>) into the scratch directory; returns the bytes.</summary>
    public byte[] PhysicalMemory(long address, long size)
    {
        string path = Path.Combine(Directory, $"pmemsave-{address:x}.img");
        Qmp.Execute("pmemsave", new { val = address, size, filename = path });
        return File.ReadAllBytes(path);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                try
                {
                    _qmp?.Execute("quit");
                }
                catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException)
                {
                    // The process goes away either way below.
                }

                if (!_process.WaitForExit(5000))
                {
                    _process.Kill();
                    _process.WaitForExit();
                }
            }
        }
        finally
        {
            _qmp?.Dispose();
            _process.Dispose();
        }
    }
}
