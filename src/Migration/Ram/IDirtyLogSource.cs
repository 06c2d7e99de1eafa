namespace MiniVmm.Migration.Ram;

/// <summary>
/// Something that tracks guest-memory writes the CPU-side dirty bitmap cannot see — a device's
/// DMA, as VFIO's DMA dirty logging reports it — and folds them into the RAM blocks' dirty
/// bitmaps when RAM synchronises (QEMU's memory listener <c>log_sync</c>). Called with the
/// big lock held, from the RAM handler's sync, before the bitmaps are harvested.
/// </summary>
public interface IDirtyLogSource
{
    /// <summary>Marks every page written since the last call in <paramref name="memory"/>'s dirty bitmaps.</summary>
    void SyncDirtyLog(GuestMemory memory);
}
