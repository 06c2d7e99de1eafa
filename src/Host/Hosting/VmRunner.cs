using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MiniVmm.Host.CommandLine;
using MiniVmm.Host.Qmp;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Hosting;

/// <summary>
/// The life of a <c>minivmm run</c> process, like QEMU's main: writes the pid file, opens the
/// QMP sockets, starts the VM unless <c>-S</c>, runs until <c>quit</c> or a termination signal,
/// then emits SHUTDOWN, lets the clients receive it and cleans up.
/// </summary>
public sealed partial class VmRunner(
    VmOptions options,
    VirtualMachine vm,
    QmpServer qmp,
    ShutdownLatch shutdown,
    ILogger<VmRunner> logger)
{
    /// <summary>Runs the VM until it is told to stop; returns the process exit code.</summary>
    public async Task<int> RunAsync()
    {
        using PidFile? pidFile = options.PidFile is null ? null : PidFile.Create(options.PidFile);
        PosixSignalRegistration[] signals =
        [
            OnSignal(PosixSignal.SIGTERM),
            OnSignal(PosixSignal.SIGINT),
            OnSignal(PosixSignal.SIGHUP),
        ];
        try
        {
            await using (qmp.ConfigureAwait(false))
            {
                foreach (QmpSocketOptions socket in options.QmpSockets)
                {
                    QmpListener listener = qmp.Listen(socket);
                    if (socket.Wait)
                    {
                        LogWaitingForClient(socket.Path);
                        await Task.WhenAny(listener.FirstClient, shutdown.Requested).ConfigureAwait(false);
                    }
                }

                StartUnlessPaused();
                ShutdownCause cause = await shutdown.Requested.ConfigureAwait(false);
                LogShuttingDown(cause.ToQapiName());
                EmitShutdown(cause);
            }
        }
        finally
        {
            foreach (PosixSignalRegistration signal in signals)
            {
                signal.Dispose();
            }
        }

        return 0;
    }

    private void StartUnlessPaused()
    {
        using BigLock.Scope held = vm.Bql.Acquire();
        vm.Autostart = !options.StartPaused;
        if (vm.Autostart && !shutdown.IsRequested)
        {
            vm.Start().ThrowIfFailed();
        }
    }

    private void EmitShutdown(ShutdownCause cause)
    {
        using BigLock.Scope held = vm.Bql.Acquire();
        vm.Events.Emit("SHUTDOWN", new JsonObject { ["guest"] = false, ["reason"] = cause.ToQapiName() });
    }

    private PosixSignalRegistration OnSignal(PosixSignal signal) =>
        PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            LogSignal(context.Signal.ToString());
            shutdown.Request(ShutdownCause.HostSignal);
        });

    [LoggerMessage(EventId = 3401, Level = LogLevel.Information, Message = "waiting for a QMP client on unix:{Path} before starting")]
    private partial void LogWaitingForClient(string path);

    [LoggerMessage(EventId = 3402, Level = LogLevel.Information, Message = "terminating on signal {Signal}")]
    private partial void LogSignal(string signal);

    [LoggerMessage(EventId = 3403, Level = LogLevel.Information, Message = "shutting down ({Reason})")]
    private partial void LogShuttingDown(string reason);
}
