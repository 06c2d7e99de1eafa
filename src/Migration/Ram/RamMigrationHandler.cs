using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Multifd;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Ram;

/// <summary>
/// The live <c>ram</c> savevm entry (instance 0, version 4), wire-compatible with QEMU 7.2's
/// <c>migration/ram.c</c> without compression, XBZRLE or postcopy. Source: setup sends
/// the block list and marks every page to send; iterations send the pages still to send in
/// address order (PAGE records, or ZERO records for all-zero pages), within the stream's rate
/// limit and a 50 ms budget; completion syncs the dirty log and sends the rest. Destination:
/// <see cref="LoadState"/> applies records to <see cref="GuestMemory"/>. Also the source of the
/// <c>ram</c> figures of <c>query-migrate</c>. With multifd attached (<see cref="AttachMultifd(MultifdSender?)"/>,
/// <see cref="AttachMultifd(MultifdReceiver?)"/>) data pages go on the multifd channels and every
/// RAM EOS is preceded by a multifd sync on both sides, as in QEMU 7.2; zero pages stay on the main stream.
/// </summary>
/// <remarks>
/// Locks: the big lock is taken (unless the caller holds it) to start dirty logging and to sync;
/// the handler's own bitmap lock (QEMU's <c>bitmap_mutex</c>) guards the to-send bitmaps and is
/// always taken after the big lock, never before. Statistics may be read from any thread.
/// </remarks>
public sealed partial class RamMigrationHandler : ISaveVmHandlers, ISaveStateDevice, IRamTransferStatistics
{
    /// <summary>The section name.</summary>
    public const string SectionIdStr = "ram";

    /// <summary>The section version written and the only one accepted.</summary>
    public const int SectionVersion = 4;

    /// <summary>Pages sent between two checks of the iteration time budget (QEMU: 64).</summary>
    public const int PagesPerTimeCheck = 64;

    private static readonly TimeSpan DirtyRatePeriod = TimeSpan.FromMilliseconds(1000);

    private readonly GuestMemory _memory;
    private readonly VirtualMachine _vm;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _bitmapLock = new();

    // Source state (under _bitmapLock unless noted).
    private RamBlockSendState[]? _send;
    private bool _dirtyLogging;
    private long _dirtyPages;           // read without the lock (pending, statistics)
    private int _scanBlock;
    private long _scanPage;
    private RamBlockSendState? _lastSent;
    private bool _anyInFlight;
    private long _periodStart;
    private long _periodDirtied;
    private long _pagesDirtied;

    // Statistics: written by the migration thread, read by anyone.
    private long _transferred;
    private long _duplicate;
    private long _normal;
    private long _precopyBytes;
    private long _downtimeBytes;
    private long _dirtySyncCount;
    private long _dirtyPagesRate;

    private long _multifdBytes;

    // Multifd channels of the current migration (set before setup / load, cleared at cleanup).
    private MultifdSender? _multifdSender;
    private MultifdReceiver? _multifdReceiver;

    // Destination state.
    private RamPageLoader? _loader;

    /// <summary>Creates the handler for <paramref name="memory"/> of <paramref name="vm"/>; time comes from <see cref="VirtualMachine.Time"/>.</summary>
    public RamMigrationHandler(GuestMemory memory, VirtualMachine vm, ILogger<RamMigrationHandler>? logger = null)
    {
        _memory = memory;
        _vm = vm;
        _time = vm.Time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    /// <summary>The iteration time budget (QEMU's <c>MAX_WAIT</c>, 50 ms), checked every <see cref="PagesPerTimeCheck"/> pages.</summary>
    public static TimeSpan MaxIterationTime { get; } = TimeSpan.FromMilliseconds(50);

    /// <inheritdoc />
    public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live;

    /// <inheritdoc />
    public SectionKind Kind => SectionKind.Ram;

    /// <summary>The guest memory this handler sends and loads.</summary>
    public GuestMemory Memory => _memory;

    /// <summary>Pages still to send in the current migration (0 when none runs).</summary>
    public long DirtyPages => Volatile.Read(ref _dirtyPages);

    /// <summary>Registers <c>ram</c>, instance 0, version 4. Runs once, when the registry is built.</summary>
    public void Register(SaveStateRegistry registry) => registry.RegisterLive(SectionIdStr, 0, SectionVersion, this);

    /// <summary>
    /// Writes the START body (MEM_SIZE with the total, each block's name and length, EOS), marks
    /// every page to send, starts dirty logging and syncs once. Migration thread; takes the big
    /// lock for dirty logging unless the caller holds it (QEMU 7.2 calls setup without it).
    /// </summary>
    public void SaveSetup(MigrationStreamWriter stream)
    {
        lock (_bitmapLock)
        {
            ReleaseSendState();
            ResetStatistics();
            var send = new RamBlockSendState[_memory.Blocks.Count];
            long pages = 0;
            for (int i = 0; i < send.Length; i++)
            {
                send[i] = new RamBlockSendState(_memory.Blocks[i]);
                pages += send[i].Pending.SetAll();
            }

            _send = send;
            Volatile.Write(ref _dirtyPages, pages);
            _scanBlock = 0;
            _scanPage = 0;
            _lastSent = null;
            _periodStart = _time.GetTimestamp();
            _periodDirtied = 0;
        }

        using (TakeBigLockUnlessHeld())
        {
            if (!_dirtyLogging)
            {
                _memory.StartDirtyLogging();
                _dirtyLogging = true;
            }

            Sync();
        }

        stream.PutBe64((ulong)_memory.TotalBytes | (ulong)RamSaveFlags.MemSize);
        foreach (RamBlock block in _memory.Blocks)
        {
            stream.PutCountedString(block.IdStrBytes);
            stream.PutBe64((ulong)block.UsedLength);
        }

        SyncMultifd(stream);
        stream.PutBe64((ulong)RamSaveFlags.EndOfSection);
        stream.Flush();
        LogSetup(_memory.Blocks.Count, _memory.TotalBytes);
    }

    /// <summary>
    /// Writes one PART body: pages still to send, in address order from where the last call
    /// stopped, until none is left, the stream's rate limit is reached or the time budget is
    /// spent; then EOS and a flush. Migration thread, big lock not held; holds the bitmap lock.
    /// </summary>
    public IterationOutcome SaveLiveIterate(MigrationStreamWriter stream)
    {
        lock (_bitmapLock)
        {
            BeginSendPass();
            long start = _time.GetTimestamp();
            bool done = false;
            try
            {
                for (int i = 0; !stream.IsRateLimited; i++)
                {
                    if (!SendNextPage(stream))
                    {
                        done = true;
                        break;
                    }

                    if (i % PagesPerTimeCheck == 0 && _time.GetElapsedTime(start) > MaxIterationTime)
                    {
                        break;
                    }
                }

                SyncMultifd(stream);
                stream.PutBe64((ulong)RamSaveFlags.EndOfSection);
                stream.Flush();
                Account(sizeof(ulong));
                EndSendPass();
            }
            catch
            {
                ReturnInFlight();
                throw;
            }

            LogIterated(Volatile.Read(ref _dirtyPages), done);
            return done ? IterationOutcome.Finished : IterationOutcome.MoreData;
        }
    }

    /// <summary>Pages still to send × 4096, without syncing. Migration thread, big lock not held.</summary>
    public PendingSize StatePendingEstimate() =>
        new((ulong)Volatile.Read(ref _dirtyPages) << RamBlock.PageShift, 0);

    /// <summary>
    /// Syncs the dirty log into the to-send bitmap, then reports like the estimate. Migration
    /// thread; takes the big lock for the sync unless the caller holds it.
    /// </summary>
    public PendingSize StatePendingExact()
    {
        if (_send is not null)
        {
            using (TakeBigLockUnlessHeld())
            {
                Sync();
            }
        }

        return StatePendingEstimate();
    }

    /// <summary>
    /// Writes the END body: syncs, sends every page still to send ignoring the rate limit, EOS,
    /// flush. Big lock held, VM stopped.
    /// </summary>
    public void SaveLiveCompletePrecopy(MigrationStreamWriter stream)
    {
        Sync();
        lock (_bitmapLock)
        {
            BeginSendPass();
            try
            {
                while (SendNextPage(stream))
                {
                }

                SyncMultifd(stream);
                stream.PutBe64((ulong)RamSaveFlags.EndOfSection);
                stream.Flush();
                EndSendPass();
            }
            catch
            {
                ReturnInFlight();
                throw;
            }
        }

        LogCompleted(Volatile.Read(ref _normal), Volatile.Read(ref _duplicate), Volatile.Read(ref _transferred));
    }

    /// <summary>
    /// Ends the source side: every page still to send or not known to have arrived is marked in
    /// the dirty log again (nothing harvested is lost), and dirty logging stops. Runs after
    /// success or failure, also when setup never ran; calling it again does nothing. Big lock held.
    /// </summary>
    public void SaveCleanup()
    {
        lock (_bitmapLock)
        {
            ReleaseSendState();
            _multifdSender = null;
            if (_dirtyLogging)
            {
                _dirtyLogging = false;
                _memory.StopDirtyLogging();
            }
        }
    }

    /// <summary>Prepares an incoming migration: no block is current yet. Destination, big lock held.</summary>
    public void LoadSetup()
    {
        _loader?.Dispose();
        _loader = new RamPageLoader(_memory, _logger, SyncMultifdOnLoad);
    }

    /// <summary>
    /// Reads one RAM section body into guest memory. Destination, big lock held.
    /// </summary>
    /// <exception cref="RamLoadException">The body breaks one of QEMU's rules (message as QEMU's).</exception>
    /// <exception cref="MigrationStreamException">The stream failed or ended inside the body.</exception>
    public void LoadState(MigrationStreamReader stream, int versionId)
    {
        _loader ??= new RamPageLoader(_memory, _logger, SyncMultifdOnLoad);
        _loader.Load(stream, versionId);
    }

    /// <summary>Forgets the incoming migration's state. Destination, big lock held; may run without <see cref="LoadSetup"/>.</summary>
    public void LoadCleanup()
    {
        if (_loader is { } loader)
        {
            LogLoaded(loader.PagesLoaded);
            loader.Dispose();
        }

        _loader = null;
        _multifdReceiver = null;
    }

    /// <summary>
    /// Sends data pages of the next outgoing migration on <paramref name="sender"/>'s channels
    /// (null: on the main stream). Migration thread, before setup; cleanup detaches it.
    /// </summary>
    public void AttachMultifd(MultifdSender? sender)
    {
        lock (_bitmapLock)
        {
            _multifdSender = sender;
        }
    }

    /// <summary>
    /// Syncs with <paramref name="receiver"/>'s channels at every RAM EOS of the incoming
    /// migration (null: no multifd). Incoming thread, before the load; load cleanup detaches it.
    /// </summary>
    public void AttachMultifd(MultifdReceiver? receiver) => _multifdReceiver = receiver;

    /// <summary>The registered RAM handler of <paramref name="registry"/>, if any.</summary>
    public static RamMigrationHandler? Find(SaveStateRegistry registry) =>
        registry.Entries.Select(e => e.Handlers).OfType<RamMigrationHandler>().FirstOrDefault();

    /// <summary>The <c>ram</c> member of <c>query-migrate</c>, as QEMU 7.2 fills it. Any thread.</summary>
    public RamTransferStats Snapshot()
    {
        long normal = Volatile.Read(ref _normal);
        return new RamTransferStats(
            Transferred: Volatile.Read(ref _transferred),
            Remaining: Volatile.Read(ref _dirtyPages) << RamBlock.PageShift,
            Total: _memory.TotalBytes,
            Duplicate: Volatile.Read(ref _duplicate),
            Normal: normal,
            NormalBytes: normal << RamBlock.PageShift,
            DirtyPagesRate: Volatile.Read(ref _dirtyPagesRate),
            DirtySyncCount: Volatile.Read(ref _dirtySyncCount),
            PrecopyBytes: Volatile.Read(ref _precopyBytes),
            DowntimeBytes: Volatile.Read(ref _downtimeBytes),
            PageSize: RamBlock.PageSize,
            PagesDirtied: Volatile.Read(ref _pagesDirtied),
            MultifdBytes: Volatile.Read(ref _multifdBytes));
    }

    /// <summary>
    /// Harvests every block's dirty log into the to-send bitmaps (QEMU's
    /// <c>migration_bitmap_sync</c>): counts the sync and, once a second, the dirty-page rate.
    /// Big lock held (by the caller); takes the bitmap lock.
    /// </summary>
    private void Sync()
    {
        lock (_bitmapLock)
        {
            RamBlockSendState[] send = _send ?? throw new InvalidOperationException("ram: dirty bitmap sync before save_setup");
            _memory.SyncDirtyLogSources();
            long fresh = 0;
            foreach (RamBlockSendState state in send)
            {
                fresh += state.Block.DirtyBitmap.HarvestInto(state.Pending.Words);
            }

            Volatile.Write(ref _dirtyPages, _dirtyPages + fresh);
            _periodDirtied += fresh;
            Volatile.Write(ref _pagesDirtied, _pagesDirtied + fresh);
            Volatile.Write(ref _dirtySyncCount, _dirtySyncCount + 1);
            long now = _time.GetTimestamp();
            TimeSpan elapsed = _time.GetElapsedTime(_periodStart, now);
            if (elapsed > DirtyRatePeriod)
            {
                Volatile.Write(ref _dirtyPagesRate, (long)(_periodDirtied * 1000 / elapsed.TotalMilliseconds));
                _periodDirtied = 0;
                _periodStart = now;
            }

            LogSynced(_dirtySyncCount, fresh, _dirtyPages);
        }
    }

    private void BeginSendPass()
    {
        RamBlockSendState[] send = _send ?? throw new InvalidOperationException("ram: sending pages before save_setup");
        foreach (RamBlockSendState state in send)
        {
            // Pages may have been written since the holes were last looked up.
            state.Extents.Forget();
        }
    }

    private void EndSendPass()
    {
        if (!_anyInFlight)
        {
            return;
        }

        foreach (RamBlockSendState state in _send!)
        {
            state.InFlight.ClearAll();
        }

        _anyInFlight = false;
    }

    private void ReturnInFlight()
    {
        if (!_anyInFlight || _send is null)
        {
            return;
        }

        long returned = 0;
        foreach (RamBlockSendState state in _send)
        {
            returned += state.InFlight.MoveInto(state.Pending);
        }

        Volatile.Write(ref _dirtyPages, _dirtyPages + returned);
        _anyInFlight = false;
        LogInFlightReturned(returned);
    }

    /// <summary>Finds the next page to send from the scan position (wrapping) and sends it; false when none is left.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private bool SendNextPage(MigrationStreamWriter stream)
    {
        if (_dirtyPages == 0)
        {
            return false;
        }

        RamBlockSendState[] send = _send!;
        int blockIndex = _scanBlock;
        long from = _scanPage;
        long page;
        for (int visited = 0; ; visited++)
        {
            page = send[blockIndex].Pending.FindNext(from);
            if (page >= 0)
            {
                break;
            }

            if (visited > send.Length)
            {
                throw new InvalidOperationException($"ram: {_dirtyPages} pages counted as dirty but none is marked");
            }

            blockIndex = (blockIndex + 1) % send.Length;
            from = 0;
        }

        RamBlockSendState state = send[blockIndex];
        state.Pending.Clear(page);
        state.InFlight.Set(page);
        _anyInFlight = true;
        Volatile.Write(ref _dirtyPages, _dirtyPages - 1);
        _scanBlock = blockIndex;
        _scanPage = page + 1;
        SavePage(stream, state, page);
        return true;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void SavePage(MigrationStreamWriter stream, RamBlockSendState state, long page)
    {
        long offset = page << RamBlock.PageShift;
        Span<byte> data = state.Block.PageUnchecked(page);
        bool zero = state.Extents.IsHole(offset) || ZeroPage.IsZero(data);
        if (!zero && _multifdSender is { } multifd)
        {
            // The page goes on a multifd channel; the main stream's block context stays as it was.
            AccountMultifd(stream, multifd.QueuePage(state.Block, offset));
            Volatile.Write(ref _normal, _normal + 1);
            return;
        }

        ulong word = (ulong)offset | (ulong)(zero ? RamSaveFlags.Zero : RamSaveFlags.Page);
        long header = sizeof(ulong);
        if (ReferenceEquals(state, _lastSent))
        {
            stream.PutBe64(word | (ulong)RamSaveFlags.Continue);
        }
        else
        {
            stream.PutBe64(word);
            stream.PutCountedString(state.Block.IdStrBytes);
            header += 1 + state.Block.IdStrBytes.Length;
            _lastSent = state;
        }

        if (zero)
        {
            stream.PutByte(0);
            Volatile.Write(ref _duplicate, _duplicate + 1);
            Account(header + 1);
        }
        else
        {
            // Over a socket the page goes from guest RAM to the kernel without a copy in between;
            // a write after the dirty-log harvest marks it to send again, so the later content wins.
            stream.PutBufferByReference(data);
            Volatile.Write(ref _normal, _normal + 1);
            Account(header + RamBlock.PageSize);
        }
    }

    /// <summary>Before a RAM EOS with multifd: the sync point of every channel (QEMU 7.2's <c>multifd_send_sync_main</c>).</summary>
    private void SyncMultifd(MigrationStreamWriter stream)
    {
        if (_multifdSender is { } multifd)
        {
            AccountMultifd(stream, multifd.Sync());
        }
    }

    /// <summary>At a RAM EOS of the incoming stream: waits for every channel's SYNC, the big lock released meanwhile.</summary>
    private void SyncMultifdOnLoad()
    {
        if (_multifdReceiver is { } multifd)
        {
            multifd.SyncMain(() => _vm.Bql.IsHeld ? _vm.Bql.ReleaseTemporarily() : null);
        }
    }

    /// <summary>Multifd bytes count as QEMU 7.2 counts them: transferred and multifd-bytes, and against the rate limit.</summary>
    private void AccountMultifd(MigrationStreamWriter stream, long bytes)
    {
        if (bytes == 0)
        {
            return;
        }

        stream.AccountForRateLimit(bytes);
        Volatile.Write(ref _multifdBytes, _multifdBytes + bytes);
        Volatile.Write(ref _transferred, _transferred + bytes);
    }

    /// <summary>Counts sent bytes as QEMU 7.2 does: precopy while the VM runs, downtime otherwise.</summary>
    private void Account(long bytes)
    {
        if (_vm.IsRunning)
        {
            Volatile.Write(ref _precopyBytes, _precopyBytes + bytes);
        }
        else
        {
            Volatile.Write(ref _downtimeBytes, _downtimeBytes + bytes);
        }

        Volatile.Write(ref _transferred, _transferred + bytes);
    }

    private void ReleaseSendState()
    {
        if (_send is not { } send)
        {
            return;
        }

        ReturnInFlight();
        long restored = 0;
        foreach (RamBlockSendState state in send)
        {
            restored += state.Pending.Count();
            state.Block.DirtyBitmap.Restore(state.Pending.Words);
        }

        _send = null;
        _lastSent = null;
        Volatile.Write(ref _dirtyPages, 0);
        if (restored > 0)
        {
            LogPagesReturned(restored);
        }
    }

    private void ResetStatistics()
    {
        Volatile.Write(ref _transferred, 0);
        Volatile.Write(ref _duplicate, 0);
        Volatile.Write(ref _normal, 0);
        Volatile.Write(ref _precopyBytes, 0);
        Volatile.Write(ref _downtimeBytes, 0);
        Volatile.Write(ref _multifdBytes, 0);
        Volatile.Write(ref _dirtySyncCount, 0);
        Volatile.Write(ref _dirtyPagesRate, 0);
        Volatile.Write(ref _pagesDirtied, 0);
    }

    private BigLock.Scope? TakeBigLockUnlessHeld() => _vm.Bql.IsHeld ? null : _vm.Bql.Acquire();

    [LoggerMessage(EventId = 4000, Level = LogLevel.Debug, Message = "RAM setup: {Blocks} block(s), {TotalBytes} bytes, every page to send")]
    private partial void LogSetup(int blocks, long totalBytes);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Debug, Message = "RAM dirty sync #{Count}: {Fresh} newly dirty pages, {Remaining} to send")]
    private partial void LogSynced(long count, long fresh, long remaining);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Trace, Message = "RAM iteration: {Remaining} pages left, finished={Finished}")]
    private partial void LogIterated(long remaining, bool finished);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Debug, Message = "RAM complete: {Normal} data pages, {Duplicate} zero pages, {Transferred} bytes counted")]
    private partial void LogCompleted(long normal, long duplicate, long transferred);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "RAM send failed: {Pages} pages not known to have arrived are to be sent again")]
    private partial void LogInFlightReturned(long pages);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Information, Message = "RAM migration ended with {Pages} unsent pages: marked dirty again")]
    private partial void LogPagesReturned(long pages);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Debug, Message = "RAM load finished: {Pages} pages loaded")]
    private partial void LogLoaded(long pages);
}
