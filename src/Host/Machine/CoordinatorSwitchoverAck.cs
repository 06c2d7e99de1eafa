using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Machine;

/// <summary>
/// The VM's migration coordinator as a device's <see cref="ISwitchoverAck"/>, looked up on
/// first use: devices are built before the coordinator, whose registry is built from them.
/// </summary>
internal sealed class CoordinatorSwitchoverAck(IServiceProvider provider) : ISwitchoverAck
{
    private ISwitchoverAck Coordinator => provider.GetRequiredService<MigrationCoordinator>();

    /// <inheritdoc />
    public bool IsEnabled => Coordinator.IsEnabled;

    /// <inheritdoc />
    public void ApproveSwitchover() => Coordinator.ApproveSwitchover();
}
