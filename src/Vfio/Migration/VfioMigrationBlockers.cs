using MiniVmm.Migration.Control;

namespace MiniVmm.Vfio.Migration;

/// <summary>
/// QEMU's VFIO migration blockers (added in <c>vfio_migration_realize</c>; <c>docs/vfio.md</c>): a
/// device that cannot track its DMA writes blocks migration, and so do several migratable devices
/// when not all of them support P2P (one global blocker).
/// </summary>
public sealed class VfioMigrationBlockers : IDisposable
{
    /// <summary>QEMU's message for devices that cannot be quiesced together.</summary>
    public const string MultipleWithoutP2P = "Multiple VFIO devices migration is supported only if all of them support P2P migration";

    /// <summary>QEMU's message for a device without dirty tracking.</summary>
    public const string NoDirtyTracking = "VFIO device doesn't support device and IOMMU dirty tracking";

    private readonly List<IDisposable> _blockers = [];

    /// <summary>Adds the blockers that the VFIO devices of <paramref name="handlers"/> call for.</summary>
    public VfioMigrationBlockers(IEnumerable<VfioMigrationHandler> handlers, MigrationCoordinator migration)
    {
        VfioMigrationHandler[] all = [.. handlers];
        foreach (VfioMigrationHandler handler in all.Where(h => !h.SupportsDirtyTracking))
        {
            _blockers.Add(migration.AddBlocker($"{NoDirtyTracking} ({handler.Id})"));
        }

        if (all.Length > 1 && !all.All(h => h.Flags.HasFlag(VfioMigrationFlags.P2P)))
        {
            _blockers.Add(migration.AddBlocker(MultipleWithoutP2P));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (IDisposable blocker in _blockers)
        {
            blocker.Dispose();
        }

        _blockers.Clear();
    }
}
