namespace MiniVmm.Vfio;

/// <summary>An IOVA range for DMA dirty logging (<c>struct vfio_device_feature_dma_logging_range</c>).</summary>
/// <param name="Iova">First address of the range.</param>
/// <param name="Length">Length in bytes.</param>
public readonly record struct VfioDmaRange(ulong Iova, ulong Length);
