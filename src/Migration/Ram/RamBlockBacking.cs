namespace MiniVmm.Migration.Ram;

/// <summary>
/// How a RAM block's memory is provided (QEMU's <c>memory-backend-memfd</c> properties). The
/// memory is always a shareable memfd, so that a guest harness can map it.
/// </summary>
public sealed record RamBlockBacking
{
    /// <summary>A plain memfd of 4 KiB pages, allocated as it is first written.</summary>
    public static RamBlockBacking Default { get; } = new();

    /// <summary>
    /// Back the block with the host's default huge pages (MFD_HUGETLB). The pages must be reserved
    /// (<c>/proc/sys/vm/nr_hugepages</c>); the block's size must be a multiple of the huge page size.
    /// One fault then allocates 2 MiB instead of 4 KiB, which makes a fresh destination fast.
    /// </summary>
    public bool HugeTlb { get; init; }

    /// <summary>Allocate every page when the block is created (QEMU's <c>prealloc=on</c>, <c>-mem-prealloc</c>).</summary>
    public bool Preallocate { get; init; }
}
