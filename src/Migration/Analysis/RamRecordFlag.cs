namespace MiniVmm.Migration.Analysis;

/// <summary>
/// The flag bits in the low bits of a RAM record's be64 word (QEMU's <c>RAM_SAVE_FLAG_*</c>);
/// the rest of the word is the page offset inside the block, or the total size for MEM_SIZE.
/// </summary>
[Flags]
public enum RamRecordFlag : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>Obsolete since 2009; never valid.</summary>
    Full = 0x01,
    /// <summary>A page of one repeated byte; one fill byte follows.</summary>
    Zero = 0x02,
    /// <summary>The RAM block list of the START section follows.</summary>
    MemSize = 0x04,
    /// <summary>A raw page follows.</summary>
    Page = 0x08,
    /// <summary>End of the RAM data of this section.</summary>
    Eos = 0x10,
    /// <summary>Same block as the previous record: no block name follows the word.</summary>
    Continue = 0x20,
    /// <summary>An XBZRLE-encoded delta page follows.</summary>
    Xbzrle = 0x40,
    /// <summary>RDMA control hook; meaningless in a stream file.</summary>
    Hook = 0x80,
    /// <summary>A zlib-compressed page follows (QEMU 7.2 <c>compress</c> capability).</summary>
    CompressPage = 0x100,
    /// <summary>Multifd synchronisation point (QEMU 8.1 and later); nothing follows.</summary>
    MultifdFlush = 0x200,
}
