using MiniVmm.Migration.Ram;

namespace MiniVmm.Vfio;

/// <summary>
/// A device's DMA path into guest RAM (<see cref="GuestMemory.WriteFromDevice"/>): writes are
/// NOT marked in the CPU-side dirty bitmap (DMA bypasses it, as with real hardware); only the
/// device's own DMA dirty logging reports them.
/// </summary>
public sealed class GuestMemoryDma(GuestMemory memory) : IGuestMemoryAccess
{
    /// <inheritdoc />
    public ulong Size => (ulong)memory.TotalBytes;

    /// <inheritdoc />
    public void Write(ulong gpa, ReadOnlySpan<byte> data) => memory.WriteFromDevice(checked((long)gpa), data);
}
