using MiniVmm.Migration.Ram;
namespace MiniVmm.Migration.Analysis;

/// <summary>How many RAM records of each kind a section (or the whole stream) holds.</summary>
public sealed class RamRecordCounts
{
    /// <summary>PAGE records (raw pages).</summary>
    public long Pages { get; private set; }

    /// <summary>ZERO records (pages of one repeated byte).</summary>
    public long ZeroPages { get; private set; }

    /// <summary>XBZRLE delta pages.</summary>
    public long XbzrlePages { get; private set; }

    /// <summary>zlib-compressed pages.</summary>
    public long CompressedPages { get; private set; }

    /// <summary>MEM_SIZE records (block lists).</summary>
    public long MemSizeRecords { get; private set; }

    /// <summary>EOS records.</summary>
    public long EosRecords { get; private set; }

    /// <summary>MULTIFD_FLUSH records.</summary>
    public long MultifdFlushRecords { get; private set; }

    /// <summary>Page records that named their block instead of carrying CONTINUE.</summary>
    public long RecordsNamingBlock { get; private set; }

    /// <summary>Every record counted, of any kind.</summary>
    public long Records => Pages + ZeroPages + XbzrlePages + CompressedPages + MemSizeRecords + EosRecords + MultifdFlushRecords;

    /// <summary>Counts one record whose flags, without CONTINUE, are <paramref name="kind"/>.</summary>
    internal void Count(RamSaveFlags kind)
    {
        switch (kind)
        {
            case RamSaveFlags.Page:
                Pages++;
                break;
            case RamSaveFlags.Zero:
                ZeroPages++;
                break;
            case RamSaveFlags.Xbzrle:
                XbzrlePages++;
                break;
            case RamSaveFlags.CompressPage:
                CompressedPages++;
                break;
            case RamSaveFlags.MemSize:
                MemSizeRecords++;
                break;
            case RamSaveFlags.EndOfSection:
                EosRecords++;
                break;
            case RamSaveFlags.MultifdFlush:
                MultifdFlushRecords++;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a single RAM record kind");
        }
    }

    /// <summary>Counts a page record that carried its block's name.</summary>
    internal void CountBlockName() => RecordsNamingBlock++;

    /// <summary>Adds every count of <paramref name="other"/> to this one.</summary>
    internal void Add(RamRecordCounts other)
    {
        Pages += other.Pages;
        ZeroPages += other.ZeroPages;
        XbzrlePages += other.XbzrlePages;
        CompressedPages += other.CompressedPages;
        MemSizeRecords += other.MemSizeRecords;
        EosRecords += other.EosRecords;
        MultifdFlushRecords += other.MultifdFlushRecords;
        RecordsNamingBlock += other.RecordsNamingBlock;
    }
}
