using Microsoft.Extensions.Logging;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Ram;

/// <summary>
/// The destination side of the RAM section (QEMU 7.2's <c>ram_load_precopy</c>): reads records
/// until EOS and applies them to guest RAM with QEMU's checks and messages. The block of the
/// last record with a name is kept across sections (CONTINUE may start a later section). Every
/// write lands inside a block: offsets are checked against the block's used length, names are at
/// most 255 bytes, and nothing is allocated from a length taken from the stream.
/// Runs on the loading thread with the big lock held; one instance per incoming migration.
/// </summary>
internal sealed partial class RamPageLoader : IDisposable
{
    private const RamSaveFlags PageRecordFlags =
        RamSaveFlags.Zero | RamSaveFlags.Page | RamSaveFlags.CompressPage | RamSaveFlags.Xbzrle;

    private readonly GuestMemory _memory;
    private readonly ILogger _logger;
    private readonly Dictionary<RamBlock, RamBackingExtents> _extents = [];
    private readonly Dictionary<RamBlock, RamPrefaulter> _prefaulters = [];
    private bool _populateUnsupported;
    private readonly Action? _endOfSection;
    private RamBlock? _lastBlock;

    /// <param name="memory">The guest RAM to load into.</param>
    /// <param name="logger">Where to log.</param>
    /// <param name="endOfSection">Runs at every EOS record (the multifd sync); null for none.</param>
    public RamPageLoader(GuestMemory memory, ILogger logger, Action? endOfSection = null)
    {
        _memory = memory;
        _logger = logger;
        _endOfSection = endOfSection;
    }

    /// <summary>Pages written or filled so far.</summary>
    public long PagesLoaded { get; private set; }

    /// <summary>Reads one section body (up to and including its EOS record).</summary>
    /// <exception cref="RamLoadException">The body is not acceptable.</exception>
    /// <exception cref="MigrationStreamException">The stream failed or ended early.</exception>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public void Load(MigrationStreamReader stream, int versionId)
    {
        if (versionId != RamMigrationHandler.SectionVersion)
        {
            throw new RamLoadException(
                $"ram: unsupported version {versionId} (only {RamMigrationHandler.SectionVersion} is known)", stream.Offset);
        }

        while (true)
        {
            long at = stream.Offset;
            ulong word = stream.GetBe64();
            var flags = (RamSaveFlags)(int)(word & (RamBlock.PageSize - 1));
            ulong offset = word & ~(ulong)(RamBlock.PageSize - 1);
            if ((flags & RamSaveFlags.CompressPage) != 0)
            {
                throw new RamLoadException("Received an unexpected compressed page", at);
            }

            RamBlock? block = null;
            if ((flags & PageRecordFlags) != 0)
            {
                block = ResolveBlock(stream, flags, at, out string? complaint);

                // Unsigned, as QEMU's ram_addr_t: an offset with the top bit set is far beyond
                // the block, not before it.
                if (block is null || offset >= (ulong)block.UsedLength)
                {
                    string illegal = $"Illegal RAM offset {offset:x}";
                    throw new RamLoadException(complaint is null ? illegal : $"{complaint}; {illegal}", at);
                }
            }

            long address = (long)offset;

            switch (flags & ~RamSaveFlags.Continue)
            {
                case RamSaveFlags.MemSize:
                    CheckBlockList(stream, offset, at);
                    break;
                case RamSaveFlags.Zero:
                    FillPage(block!, address, stream.GetByte());
                    break;
                case RamSaveFlags.Page:
                    PopulateChunkOf(block!, address);
                    stream.ReadExactly(block!.GetSpan(address, RamBlock.PageSize), "RAM page");
                    ExtentsOf(block).Forget();
                    PagesLoaded++;
                    break;
                case RamSaveFlags.Xbzrle:
                    throw new RamLoadException(
                        $"XBZRLE page at 0x{address:x} of '{block!.IdStr}': the xbzrle capability is not supported by MiniVmm", at);
                case RamSaveFlags.EndOfSection:
                    if (_endOfSection is { } sync)
                    {
                        sync();

                        // Pages may have arrived on other channels where holes were seen.
                        foreach (RamBackingExtents extents in _extents.Values)
                        {
                            extents.Forget();
                        }
                    }

                    return;
                default:
                    if ((flags & RamSaveFlags.Hook) != 0)
                    {
                        throw new RamLoadException($"RAM_SAVE_FLAG_HOOK (0x{(int)flags:x}): RDMA is not supported by MiniVmm", at);
                    }

                    throw new RamLoadException($"Unknown combination of migration flags: 0x{(int)flags:x}", at);
            }
        }
    }

    private RamBlock? ResolveBlock(MigrationStreamReader stream, RamSaveFlags flags, long at, out string? complaint)
    {
        complaint = null;
        if ((flags & RamSaveFlags.Continue) != 0)
        {
            if (_lastBlock is null)
            {
                complaint = "Ack, bad migration stream!";
            }

            return _lastBlock;
        }

        ReadOnlySpan<byte> name = stream.GetCountedBytes();
        RamBlock? block = _memory.FindBlock(name);
        if (block is null)
        {
            complaint = $"Can't find block {System.Text.Encoding.UTF8.GetString(name)}";
            return null;
        }

        _lastBlock = block;
        return block;
    }

    private void CheckBlockList(MigrationStreamReader stream, ulong total, long at)
    {
        ulong remaining = total;
        while (remaining > 0)
        {
            string idStr = stream.GetCountedString();
            ulong length = stream.GetBe64();
            RamBlock block = _memory.FindBlock(idStr)
                ?? throw new RamLoadException($"Unknown ramblock \"{idStr}\", cannot accept migration", at);
            if (length != (ulong)block.UsedLength)
            {
                throw new RamLoadException(
                    $"Size mismatch: {idStr}: 0x{length:x} != 0x{block.UsedLength:x}: Invalid argument", at);
            }

            if ((ulong)block.UsedLength > remaining)
            {
                throw new RamLoadException(
                    $"RAM block list adds up to more than the MEM_SIZE total 0x{total:x} (local RAM is 0x{_memory.TotalBytes:x})", at);
            }

            remaining -= (ulong)block.UsedLength;
        }

        LogBlockListAccepted(total);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void FillPage(RamBlock block, long address, byte fill)
    {
        PagesLoaded++;
        if (fill == 0)
        {
            // QEMU only writes when the page is not zero already; an untouched page stays unallocated.
            if (ExtentsOf(block).IsHole(address) || ZeroPage.IsZero(block.GetSpan(address, RamBlock.PageSize)))
            {
                return;
            }
        }

        PopulateChunkOf(block, address);
        block.GetSpan(address, RamBlock.PageSize).Fill(fill);
        ExtentsOf(block).Forget();
    }

    /// <summary>
    /// Before the first data page of a 64 KiB chunk lands, allocates the whole chunk in one call
    /// (and, on a dense stream, lets a worker allocate ahead): a full-RAM stream loads several
    /// times faster than with one page fault per page, and chunks that only get zero pages stay
    /// unallocated.
    /// </summary>
    private void PopulateChunkOf(RamBlock block, long address)
    {
        if (_populateUnsupported)
        {
            return;
        }

        if (!_prefaulters.TryGetValue(block, out RamPrefaulter? prefaulter))
        {
            prefaulter = new RamPrefaulter(block);
            _prefaulters[block] = prefaulter;
        }

        _populateUnsupported = !prefaulter.EnsurePopulated(address / RamBlock.PopulateChunk);
    }

    /// <summary>Stops the prefault workers.</summary>
    public void Dispose()
    {
        foreach (RamPrefaulter prefaulter in _prefaulters.Values)
        {
            prefaulter.Dispose();
        }

        _prefaulters.Clear();
    }

    private RamBackingExtents ExtentsOf(RamBlock block)
    {
        if (!_extents.TryGetValue(block, out RamBackingExtents? extents))
        {
            extents = new RamBackingExtents(block);
            _extents.Add(block, extents);
        }

        return extents;
    }

    [LoggerMessage(EventId = 4020, Level = LogLevel.Debug, Message = "RAM load: block list for 0x{Total:x} bytes accepted")]
    private partial void LogBlockListAccepted(ulong total);
}
