using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MiniVmm.GuestHarness;
using MiniVmm.Host.CommandLine;
using MiniVmm.Host.Devices;
using MiniVmm.Devices.Models;
using MiniVmm.Host.Guest;
using MiniVmm.Migration.Ram;
using MiniVmm.Host.Qmp;
using MiniVmm.Migration.Control;
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
    MigrationCoordinator migration,
    IServiceProvider services,
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
            if (!InitializeMachine())
            {
                return 1;
            }

            MiniVmm.Migration.HotPathPrecompiler.Start(logger);

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

                if (!StartMachine())
                {
                    return 1;
                }

                Task watcher = WatchIncomingAsync();
                ShutdownCause cause = await shutdown.Requested.ConfigureAwait(false);
                LogShuttingDown(cause.ToQapiName());
                EmitShutdown(cause);
                migration.Dispose();
                await watcher.ConfigureAwait(false);
                return cause == ShutdownCause.IncomingMigrationFailed ? 1 : 0;
            }
        }
        finally
        {
            foreach (PosixSignalRegistration signal in signals)
            {
                signal.Dispose();
            }
        }
    }

    /// <summary>
    /// Builds the machine before any QMP client is served (as QEMU finishes machine init before
    /// its monitor runs): copies the <c>-device loader</c> files into RAM and creates the guest.
    /// False when that fails (the process exits 1).
    /// </summary>
    private bool InitializeMachine()
    {
        // Held from the first loader to the start of the VM: QMP commands (which take the big
        // lock) wait until the machine is set up, as QEMU's monitor only runs after machine init.
        using BigLock.Scope held = vm.Bql.Acquire();
        try
        {
            var memory = (GuestMemory?)services.GetService(typeof(GuestMemory));
            foreach (FileLoader loader in ((DeviceSet)services.GetService(typeof(DeviceSet))!).OfType<FileLoader>())
            {
                loader.Apply(memory);
            }

            _ = services.GetService(typeof(DirtyingGuest));
            _ = services.GetService(typeof(HarnessGuest));
            _ = services.GetService(typeof(MiniVmm.Vfio.Migration.VfioMigrationBlockers));
            return true;
        }
        catch (Exception error) when (error is InvalidCommandLineException or DeviceConfigurationException or ArgumentException or GuestHarnessSetupException)
        {
            Console.Error.WriteLine($"minivmm: {error.Message}");
            return false;
        }
    }

    /// <summary>
    /// Enters <c>inmigrate</c> and starts listening for <c>-incoming URI</c>; otherwise starts the
    /// VM unless <c>-S</c>. False when the incoming URI cannot be used (the process exits 1).
    /// </summary>
    private bool StartMachine()
    {
        using BigLock.Scope held = vm.Bql.Acquire();
        vm.Autostart = !options.StartPaused;
        if (options.Incoming is { } incoming)
        {
            vm.SetRunState(RunState.InMigrate);
            if (options.IncomingPrefault && services.GetService(typeof(IncomingRamPrefault)) is IncomingRamPrefault prefault
                && !options.MemPrealloc && options.MemoryBackend is not { Prealloc: true })
            {
                // RAM fills in the background while the VM waits; the stream's arrival stops it.
                prefault.Start();
            }

            if (incoming == "defer")
            {
                return true;
            }

            try
            {
                migration.StartIncoming(incoming);
                return true;
            }
            catch (Exception error) when (error is MigrationBlockedException or ArgumentException or IOException)
            {
                Console.Error.WriteLine($"minivmm: -incoming {incoming}: {error.Message}");
                return false;
            }
        }

        if (vm.Autostart && !shutdown.IsRequested)
        {
            try
            {
                vm.Start().ThrowIfFailed();
            }
            catch (VmStartRefusedException refused)
            {
                Console.Error.WriteLine($"minivmm: cannot start the VM: {refused.Message}");
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Waits for the incoming migration (from <c>-incoming</c> or <c>migrate-incoming</c>); if it
    /// fails, reports it as QEMU 7.2 does and ends the process with status 1.
    /// </summary>
    private async Task WatchIncomingAsync()
    {
        Task<IncomingMigration> started = migration.IncomingStarted;
        if (await Task.WhenAny(started, shutdown.Requested).ConfigureAwait(false) != started)
        {
            return;
        }

        IncomingMigration incoming = await started.ConfigureAwait(false);
        await incoming.Finished.ConfigureAwait(false);
        if (incoming.Status == MigrationStatus.Failed)
        {
            await Console.Error.WriteLineAsync($"minivmm: load of migration failed: {incoming.Error?.Message}").ConfigureAwait(false);
            shutdown.Request(ShutdownCause.IncomingMigrationFailed);
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
