using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Machine;

/// <summary>
/// The VM's migration coordinator as the <see cref="IMigrationActivityNotes"/> of a device,
/// looked up on first use: devices are built before the coordinator, whose registry is built from them.
/// </summary>
internal sealed class CoordinatorActivityNotes(IServiceProvider provider) : IMigrationActivityNotes
{
    /// <inheritdoc />
    public void Note(string name, string? detail = null) =>
        provider.GetRequiredService<MigrationCoordinator>().Note(name, detail);
}
