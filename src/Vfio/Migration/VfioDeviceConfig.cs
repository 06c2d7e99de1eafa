using MiniVmm.Migration.VMState;

namespace MiniVmm.Vfio.Migration;

/// <summary>
/// The device config a VFIO device sends in its FULL section, after its data (QEMU's
/// vfio-pci sends PCI config space and MSI-X there). For an emulated device: a 256-byte config
/// space, loaded on the destination before the VM starts.
/// </summary>
public sealed class VfioDeviceConfig
{
    /// <summary>Size of the config space.</summary>
    public const int Size = 256;

    private static readonly VMStateDescription<VfioDeviceConfig> Description =
        VMStateDescription<VfioDeviceConfig>.Build("vfio-emu-config", version: 1, minimumVersion: 1)
            .Buffer("config", c => c.Space)
            .Done();

    /// <summary>The config space bytes.</summary>
    public byte[] Space { get; } = new byte[Size];

    /// <summary>The VMState description of the config.</summary>
    public static VMStateDescription<VfioDeviceConfig> Vmsd => Description;
}
