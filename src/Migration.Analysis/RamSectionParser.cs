using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// Walks the bodies of the sections of one <c>ram</c> entry (START, then PARTs, then END) up to
/// and including each body's EOS record. The block named by the last record carries over from
/// one section to the next, as on the wire, and so does the block list from START.
/// </summary>
internal sealed class RamSectionParser
{
    /// <summary>The only RAM section version QEMU writes and reads.</summary>
    public const uint SupportedVersion = 4;

    // A MEM_SIZE list longer than this is taken as garbage (real machines have a few dozen blocks).
    private const int MaxBlocks = 4096;

    private const RamSaveFlags KnownKinds = RamSaveFlags.Zero | RamSaveFlags.MemSize | RamSaveFlags.Page
        | RamSaveFlags.EndOfSection | RamSaveFlags.Xbzrle | RamSaveFlags.CompressPage | RamSaveFlags.MultifdFlush;

    // XBZRLE records start with this encoding byte.
    private const byte XbzrleEncoding = 0x01;

    private readonly MigrationStreamReader _reader;
    private readonly long _streamLength;
    private readonly int _pageSize;
    private readonly ulong _flagMask;
    private readonly bool _blockListHasAddresses;
    private readonly Dictionary<string, ulong> _blockLengths = new(StringComparer.Ordinal);
    private string? _currentBlock;

    /// <param name="reader">The stream, positioned at a section body when <see cref="ParseBody"/> is called.</param>
    /// <param name="streamLength">Total stream length, for length checks.</param>
    /// <param name="pageSize">Target page size: a power of two; the flags live below it.</param>
    /// <param name="blockListHasAddresses">True with x-ignore-shared: each MEM_SIZE entry carries a be64 address.</param>
    public RamSectionParser(MigrationStreamReader reader, long streamLength, int pageSize, bool blockListHasAddresses)
    {
        _reader = reader;
        _streamLength = streamLength;
        _pageSize = pageSize;
        _flagMask = (ulong)pageSize - 1;
        _blockListHasAddresses = blockListHasAddresses;
    }

    /// <summary>Reads records into <paramref name="summary"/> up to and including EOS.</summary>
    public void ParseBody(RamSectionSummary summary)
    {
        while (true)
        {
            long at = _reader.Offset;
            ulong word = _reader.GetBe64();
            var flags = (RamSaveFlags)(uint)(word & _flagMask);
            ulong address = word & ~_flagMask;
            RamSaveFlags kind = flags & ~RamSaveFlags.Continue;
            bool continues = (flags & RamSaveFlags.Continue) != 0;

            if ((kind & KnownKinds) != kind || !IsSingleKind(kind))
            {
                throw new StreamAnalysisException(
                    (flags & RamSaveFlags.Hook) != 0
                        ? $"RAM record with the RDMA hook flag (flags 0x{(uint)flags:x}) cannot appear in a stream"
                        : $"RAM record with an unknown combination of flags 0x{(uint)flags:x}",
                    at);
            }

            switch (kind)
            {
                case RamSaveFlags.MemSize:
                    summary.TotalRamBytes = address;
                    ReadBlockList(summary, address, at);
                    break;
                case RamSaveFlags.Zero:
                    CheckPageOffset(SelectBlock(continues, summary, at), address, at);
                    _reader.GetByte();
                    break;
                case RamSaveFlags.Page:
                    CheckPageOffset(SelectBlock(continues, summary, at), address, at);
                    RemainingBytes.Skip(_reader, _streamLength, _pageSize, "RAM page");
                    break;
                case RamSaveFlags.Xbzrle:
                    CheckPageOffset(SelectBlock(continues, summary, at), address, at);
                    ReadXbzrle();
                    break;
                case RamSaveFlags.CompressPage:
                    CheckPageOffset(SelectBlock(continues, summary, at), address, at);
                    long lengthAt = _reader.Offset;
                    uint compressed = _reader.GetBe32();
                    RemainingBytes.Ensure(_reader, _streamLength, compressed, "compressed RAM page", lengthAt);
                    RemainingBytes.Skip(_reader, _streamLength, compressed, "compressed RAM page");
                    break;
            }

            summary.Records.Count(kind);
            if (kind == RamSaveFlags.EndOfSection)
            {
                return;
            }
        }
    }

    private static bool IsSingleKind(RamSaveFlags kind) => kind != 0 && ((uint)kind & ((uint)kind - 1)) == 0;

    private void ReadBlockList(RamSectionSummary summary, ulong total, long recordOffset)
    {
        ulong remaining = total;
        while (remaining > 0)
        {
            long entryAt = _reader.Offset;
            string name = _reader.GetCountedString();
            ulong length = _reader.GetBe64();
            ulong? address = _blockListHasAddresses ? _reader.GetBe64() : null;
            if (length == 0 || length > remaining)
            {
                throw new StreamAnalysisException(
                    $"RAM block '{name}' in the MEM_SIZE list (record at offset 0x{recordOffset:x}) has length 0x{length:x}, "
                    + $"but 0x{remaining:x} of the total 0x{total:x} are left",
                    entryAt);
            }

            if (summary.Blocks.Count >= MaxBlocks)
            {
                throw new StreamAnalysisException($"MEM_SIZE list has more than {MaxBlocks} RAM blocks", entryAt);
            }

            remaining -= length;
            _blockLengths[name] = length;
            summary.AddBlock(new RamBlockEntry(name, length, address));
        }
    }

    private string SelectBlock(bool continues, RamSectionSummary summary, long recordOffset)
    {
        if (continues)
        {
            return _currentBlock ?? throw new StreamAnalysisException(
                "RAM record has CONTINUE, but no earlier record named a block", recordOffset);
        }

        string name = _reader.GetCountedString();
        if (!_blockLengths.ContainsKey(name))
        {
            throw new StreamAnalysisException($"RAM record names block '{name}', which the MEM_SIZE list does not have", recordOffset);
        }

        summary.Records.CountBlockName();
        _currentBlock = name;
        return name;
    }

    private void CheckPageOffset(string block, ulong address, long recordOffset)
    {
        ulong length = _blockLengths[block];
        if (address >= length)
        {
            throw new StreamAnalysisException(
                $"RAM record for offset 0x{address:x} is outside block '{block}' (length 0x{length:x})", recordOffset);
        }
    }

    private void ReadXbzrle()
    {
        long at = _reader.Offset;
        byte encoding = _reader.GetByte();
        if (encoding != XbzrleEncoding)
        {
            throw new StreamAnalysisException($"XBZRLE page has encoding byte 0x{encoding:x2}, expected 0x{XbzrleEncoding:x2}", at);
        }

        long lengthAt = _reader.Offset;
        ushort length = _reader.GetBe16();
        if (length > _pageSize)
        {
            throw new StreamAnalysisException($"XBZRLE page has length {length}, more than a page ({_pageSize})", lengthAt);
        }

        RemainingBytes.Skip(_reader, _streamLength, length, "XBZRLE page");
    }
}
