using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Machine;

/// <summary>Service-container registration of QEMU 7.2's <c>-M none -m SIZE</c> machine.</summary>
public static class MachineNoneServiceCollectionExtensions
{
    /// <summary>
    /// Adds the <c>none</c> machine with <paramref name="ramSize"/> bytes of RAM: its
    /// <see cref="GuestMemory"/> (one block <c>ram</c> at 0) and, in QEMU 7.2's registration
    /// order so that section ids match (timer 0, block 1, ram 2, dirty-bitmap 3, globalstate 4),
    /// <see cref="TimerState"/>, an inactive <c>block</c>, the <see cref="RamMigrationHandler"/>
    /// (also as <see cref="IRamTransferStatistics"/>), an inactive <c>dirty-bitmap</c> and
    /// <see cref="GlobalState"/>. A <see cref="VirtualMachine"/> is added unless one is registered
    /// (with the container's <see cref="TimeProvider"/>, if any).
    /// </summary>
    public static IServiceCollection AddMachineNone(this IServiceCollection services, long ramSize) =>
        services.AddMachineNone(ramSize, GuestMemory.MachineNoneBlockName, RamBlockBacking.Default);

    /// <summary>
    /// The same, with the RAM block named <paramref name="blockName"/> and provided as
    /// <paramref name="backing"/> says (QEMU's <c>-machine memory-backend=ID</c> names the block ID;
    /// <c>-mem-prealloc</c> preallocates it). Also adds the <see cref="IncomingRamPrefault"/> a
    /// waiting destination may start.
    /// </summary>
    public static IServiceCollection AddMachineNone(this IServiceCollection services, long ramSize, string blockName, RamBlockBacking backing)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (ramSize <= 0 || ramSize % RamBlock.PageSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ramSize), $"RAM size {ramSize} is not a positive multiple of {RamBlock.PageSize}");
        }

        services.TryAddSingleton(provider => new VirtualMachine(provider.GetService<TimeProvider>()));
        services.TryAddSingleton(_ => GuestMemory.ForMachineNone(blockName, ramSize, backing));
        services.TryAddSingleton(provider => new IncomingRamPrefault(
            provider.GetRequiredService<GuestMemory>(), logger: provider.GetService<Microsoft.Extensions.Logging.ILogger<IncomingRamPrefault>>()));
        services.AddSavevm();
        services.AddSaveStateDevice<TimerState>();
        services.AddSingleton<ISaveStateDevice>(InactiveLiveSection.BlockMigration());
        services.AddSaveStateDevice<RamMigrationHandler>();
        services.TryAddSingleton<IRamTransferStatistics>(provider => provider.GetRequiredService<RamMigrationHandler>());
        services.AddSingleton<ISaveStateDevice>(InactiveLiveSection.DirtyBitmapMigration());
        services.AddSaveStateDevice<GlobalState>();
        return services;
    }
}
