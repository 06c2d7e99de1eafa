namespace MiniVmm.Migration.Multifd;

/// <summary>The field of a multifd packet an error is about.</summary>
public enum MultifdField
{
    /// <summary><c>magic</c>.</summary>
    Magic,
    /// <summary><c>version</c>.</summary>
    Version,
    /// <summary>The init packet's <c>uuid</c>.</summary>
    Uuid,
    /// <summary>The init packet's channel <c>id</c>.</summary>
    ChannelId,
    /// <summary><c>flags</c>.</summary>
    Flags,
    /// <summary><c>pages_alloc</c>.</summary>
    PagesAlloc,
    /// <summary><c>normal_pages</c>.</summary>
    NormalPages,
    /// <summary><c>ramblock</c>.</summary>
    RamBlock,
    /// <summary>One of the <c>offset</c> entries.</summary>
    Offset,
    /// <summary>The page data after the header (the connection ended or failed).</summary>
    PageData,
    /// <summary>The packet header (the connection ended or failed inside it).</summary>
    Header,
}
