using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MiniVmm.GuestHarness;
using MiniVmm.Host.CommandLine;
using MiniVmm.Devices.Samples;
using MiniVmm.Host.Devices;
using MiniVmm.Devices.Models;
using MiniVmm.Host.Guest;
using MiniVmm.Host.Objects;
using MiniVmm.Host.Qmp;
using MiniVmm.Host.Qmp.Commands;
using MiniVmm.Host.Qmp.Commands.Migration;
using MiniVmm.Host.Reports;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Machine;

/// <summary>
/// Builds the machine a <c>minivmm run</c> command line describes: QEMU's <c>-M none</c>
/// sections in QEMU's registration order, the <c>-device</c>s, migration, and their QMP commands.
/// </summary>
public static class MachineServiceCollectionExtensions
{
    /// <summary>Adds the machine for <paramref name="options"/>.</summary>
    /// <exception cref="InvalidCommandLineException">A <c>-device</c> with an unknown driver or bad properties.</exception>
    public static IServiceCollection AddMachine(this IServiceCollection services, VmOptions options)
    {
        services.AddSingleton(new SavevmOptions { MachineName = options.Machine.Type });
        if (options.MemoryBytes > 0)
        {
            services.AddMachineNone(
                (long)options.MemoryBytes,
                options.MemoryBackend?.Id ?? GuestMemory.MachineNoneBlockName,
                new RamBlockBacking
                {
                    HugeTlb = options.MemoryBackend?.HugeTlb ?? false,
                    Preallocate = options.MemPrealloc || (options.MemoryBackend?.Prealloc ?? false),
                });
        }
        else
        {
            // QEMU's none machine without -m: no RAM block, the other sections as usual.
            services.AddSaveStateDevice<TimerState>();
            services.AddSaveStateDevice<GlobalState>();
        }

        services.AddSingleton<DirtyRateMeasurements>();
        if (options.DirtyGuestRate is { } rate)
        {
            services.AddSingleton(provider => new DirtyingGuest(
                provider.GetService<GuestMemory>() ?? throw new InvalidCommandLineException("-guest dirty needs RAM (use -m)"),
                provider.GetRequiredService<VirtualMachine>(),
                rate));
            services.AddSingleton<ISaveStateDevice>(provider => provider.GetRequiredService<DirtyingGuest>());
        }

        if (options.Harness is { } harness)
        {
            services.AddSingleton(provider => new HarnessGuest(
                harness,
                provider.GetService<GuestMemory>() ?? throw new InvalidCommandLineException("-guest harness needs RAM (use -m)"),
                provider.GetRequiredService<VirtualMachine>(),
                reason => provider.GetRequiredService<MigrationCoordinator>().FailOutgoing(reason),
                provider.GetRequiredService<ILogger<HarnessGuest>>())
            {
                ActivityNotes = new CoordinatorActivityNotes(provider),
            });
            services.AddSingleton<ISaveStateDevice>(provider => provider.GetRequiredService<HarnessGuest>());
            services.AddQmpCommand<QueryGuestHarnessCommand>();
        }

        // The device models -device knows; a device author's model is one more such line.
        services.AddDeviceModel<FileLoader>("loader", "QEMU's generic loader: copies a file into guest RAM at start");
        services.AddDeviceModel<SampleDevice>("x-sample", "a sample VMState device with registers, arrays, a struct and a subsection");
        services.AddDeviceModel<VfioEmuDevice>("vfio-emu", "an emulated VFIO device (a DMA engine) migrated by QEMU's VFIO handler");
        services.AddDeviceModel<CounterDevice>("x-counter", "the device-author example of docs/adding-a-device.md: a count that migrates");
        services.AddDeviceModel<LiveScratchDevice>(LiveScratchDevice.SectionName, "a scratch memory a background writer dirties while the VM runs, migrated live in chunks");
        services.AddSingleton<ISwitchoverAck>(provider => new CoordinatorSwitchoverAck(provider));
        services.AddSingleton(provider => new DeviceSet(
            provider.GetRequiredService<DeviceModelCatalog>().Check(options.Devices), provider));
        services.AddSaveStateDevice<DeviceSet>();

        services.AddMigrationTelemetry();
        services.AddSingleton(provider => new TlsObjectTable(provider.GetRequiredService<VmOptions>()));
        services.AddSingleton(provider => new MigrationCoordinator(
            provider.GetRequiredService<SaveStateRegistry>(),
            provider.GetRequiredService<VirtualMachine>(),
            provider.GetRequiredService<SavevmOptions>(),
            provider.GetRequiredService<GlobalState>(),
            provider.GetService<IRamTransferStatistics>(),
            provider.GetRequiredService<ILoggerFactory>(),
            provider.GetRequiredService<MigrationTelemetry>())
        {
            TlsCredentials = provider.GetRequiredService<TlsObjectTable>().Find,
            PassedDescriptors = provider.GetService<PassedDescriptorTable>() is { } passed ? passed.TakeStream : null,
            IncomingPrefault = provider.GetService<IncomingRamPrefault>(),
        });
        services.AddSingleton(provider => new MiniVmm.Vfio.Migration.VfioMigrationBlockers(
            provider.GetRequiredService<DeviceSet>().OfType<VfioEmuDevice>().Select(d => d.Handler),
            provider.GetRequiredService<MigrationCoordinator>()));

        return services
            .AddQmpCommand<ObjectAddCommand>()
            .AddQmpCommand<ObjectDelCommand>()
            .AddSingleton<MigrationReportWriter>()
            .AddQmpCommand<MigrateCommand>()
            .AddQmpCommand<MigrateIncomingCommand>()
            .AddQmpCommand<MigrateCancelCommand>()
            .AddQmpCommand<MigrateContinueCommand>()
            .AddQmpCommand<QueryMigrateCommand>()
            .AddQmpCommand<MigrateSetParametersCommand>()
            .AddQmpCommand<QueryMigrateParametersCommand>()
            .AddQmpCommand<MigrateSetCapabilitiesCommand>()
            .AddQmpCommand<QueryMigrateCapabilitiesCommand>()
            .AddQmpCommand<QueryDeviceCommand>()
            .AddQmpCommand<PmemsaveCommand>()
            .AddQmpCommand<CalcDirtyRateCommand>()
            .AddQmpCommand<QueryDirtyRateCommand>()
            .AddQmpCommand<CheckGuestMemoryCommand>();
    }
}
