namespace MiniVmm.Vfio;

/// <summary>Guest physical memory as an emulated device sees it for DMA.</summary>
public interface IGuestMemoryAccess
{
    /// <summary>Size of guest memory in bytes; valid addresses are below it.</summary>
    ulong Size { get; }

    /// <summary>Writes <paramref name="data"/> at guest physical address <paramref name="gpa"/> (a DMA write).</summary>
    void Write(ulong gpa, ReadOnlySpan<byte> data);
}
