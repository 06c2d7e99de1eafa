namespace MiniVmm.Migration.Ram;

/// <summary>
/// The flag bits in the low 12 bits of every RAM record word (the high bits hold a
/// page-aligned offset, or the total size for <see cref="MemSize"/>). Values as in QEMU 7.2.
/// The one vocabulary of RAM records: the RAM handler writes with it, its loader and the
/// stream analyzer read with it.
/// </summary>
[Flags]
public enum RamSaveFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>Obsolete whole-RAM flag; never valid.</summary>
    Full = 0x01,
    /// <summary>A page filled with one byte value (the next byte).</summary>
    Zero = 0x02,
    /// <summary>The block list (setup only); the word's high bits are the total size.</summary>
    MemSize = 0x04,
    /// <summary>A raw page (4096 bytes follow).</summary>
    Page = 0x08,
    /// <summary>The end of the RAM data of this section.</summary>
    EndOfSection = 0x10,
    /// <summary>The page is in the same block as the previous page record; no block name follows.</summary>
    Continue = 0x20,
    /// <summary>An XBZRLE-encoded delta (not supported by MiniVmm).</summary>
    Xbzrle = 0x40,
    /// <summary>RDMA control hook (not supported by MiniVmm).</summary>
    Hook = 0x80,
    /// <summary>A zlib-compressed page (QEMU 7.2 compress capability; not supported by MiniVmm).</summary>
    CompressPage = 0x100,
    /// <summary>Multifd sync point (QEMU ≥ 8.1; never sent for a 7.2 peer).</summary>
    MultifdFlush = 0x200,
}
