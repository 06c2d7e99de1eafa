using MiniVmm.Vfio;

namespace MiniVmm.Bench;

/// <summary>Guest memory that accepts DMA writes and keeps nothing (the benchmarks never run DMA).</summary>
internal sealed class DiscardingGuestMemory(ulong size) : IGuestMemoryAccess
{
    /// <inheritdoc />
    public ulong Size { get; } = size;

    /// <inheritdoc />
    public void Write(ulong gpa, ReadOnlySpan<byte> data)
    {
    }
}
