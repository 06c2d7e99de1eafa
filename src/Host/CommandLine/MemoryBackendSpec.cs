namespace MiniVmm.Host.CommandLine;

/// <summary>
/// One <c>-object memory-backend-memfd,id=ID,size=SIZE[,share=on][,hugetlb=on][,prealloc=on]</c>,
/// in QEMU's spelling. It becomes guest RAM when <c>-machine memory-backend=ID</c> names it; the
/// RAM block is then called ID, as in QEMU 7.2.
/// </summary>
/// <param name="Id">The object's id, and the RAM block's name.</param>
/// <param name="Size">Bytes.</param>
/// <param name="HugeTlb">Back it with the host's default huge pages.</param>
/// <param name="Prealloc">Allocate all of it at start-up.</param>
/// <param name="Text">The option as typed, for error messages.</param>
public sealed record MemoryBackendSpec(string Id, ulong Size, bool HugeTlb, bool Prealloc, string Text)
{
    /// <summary>The QOM type name.</summary>
    public const string QomType = "memory-backend-memfd";

    /// <summary>The properties it takes besides <c>id</c> and <c>qom-type</c>.</summary>
    public static readonly IReadOnlyList<string> Properties = ["size", "share", "hugetlb", "hugetlbsize", "prealloc", "seal", "prealloc-threads"];
}
