namespace MiniVmm.Migration.Multifd;

/// <summary>The <c>flags</c> word of a multifd packet.</summary>
[Flags]
public enum MultifdPacketFlags : uint
{
    /// <summary>No flag: pages with no compression.</summary>
    None = 0,

    /// <summary>The sender's sync point: every page sent before the main stream's next EOS is in or before this packet.</summary>
    Sync = 1,

    /// <summary>Bits 1–4 name a compression method (zlib 0x2, zstd 0x4); MiniVmm supports none.</summary>
    CompressionMask = 0xF << 1,
}
