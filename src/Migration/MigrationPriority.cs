namespace MiniVmm.Migration;

/// <summary>
/// Where a device's state goes in the save order: entries with a higher priority are saved
/// (and so loaded) before those with a lower one. The numeric values are QEMU 7.2's.
/// </summary>
public enum MigrationPriority
{
    /// <summary>Ordinary devices.</summary>
    Default = 0,

    /// <summary>IOMMUs: before the devices translated through them.</summary>
    Iommu = 1,

    /// <summary>PCI buses: before the devices plugged into them.</summary>
    PciBus = 2,

    /// <summary>virtio-mem: before RAM-dependent devices.</summary>
    VirtioMem = 3,

    /// <summary>The GICv3 interrupt translation service.</summary>
    GicV3Its = 4,

    /// <summary>The GICv3 interrupt controller.</summary>
    GicV3 = 5,
}
