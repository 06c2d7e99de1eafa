using MiniVmm.Migration.Ram;
using MiniVmm.Vfio;

namespace MiniVmm.Host.Devices;

/// <summary>
/// A device's DMA path into guest RAM: writes land in the RAM blocks directly and are NOT
/// marked in the CPU-side dirty bitmap (DMA bypasses it, as with real hardware); only the
/// device's own DMA dirty logging reports them.
/// </summary>
public sealed class GuestMemoryDma(GuestMemory memory) : IGuestMemoryAccess
{
    /// <inheritdoc />
    public ulong Size => (ulong)memory.TotalBytes;

    /// <inheritdoc />
    public void Write(ulong gpa, ReadOnlySpan<byte> data)
    {
        long address = checked((long)gpa);
        while (!data.IsEmpty)
        {
            RamBlock block = memory.Blocks.FirstOrDefault(b => b.Contains(address))
                ?? throw new GuestMemoryRangeException($"DMA write at 0x{address:x} is outside guest RAM", address, data.Length);
            long offset = address - block.GuestAddress;
            int chunk = (int)Math.Min(data.Length, block.UsedLength - offset);
            data[..chunk].CopyTo(block.GetSpan(offset, chunk));
            data = data[chunk..];
            address += chunk;
        }
    }
}
