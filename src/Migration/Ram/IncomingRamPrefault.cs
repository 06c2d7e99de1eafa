using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Native;

namespace MiniVmm.Migration.Ram;

/// <summary>
/// Allocates a waiting destination's RAM in the background, so that the incoming pages land in
/// memory that is already there instead of paying one allocation (and, in a VM, a host fault)
/// per page during the migration. QEMU only offers <c>-mem-prealloc</c>, which blocks start-up;
/// this runs while the VM sits in <c>inmigrate</c> and gives way to the loader.
/// <para>
/// The budget: one thread at the lowest scheduling priority (niceness 19, so it only gets CPU
/// nobody else wants), in <see cref="Step"/> calls, from the start of each block; it stops
/// for good as soon as the stream arrives (<see cref="Yield"/>: the loader's own look-ahead takes
/// over), when all RAM is allocated, or when the host's available memory would drop below
/// <see cref="IncomingRamPrefaultBudget.MemoryReserveBytes"/>. It never allocates more than the
/// guest's RAM. A chunk it populated is not populated again by the loader.
/// </para>
/// </summary>
public sealed partial class IncomingRamPrefault : IDisposable
{
    /// <summary>How much one populate call covers; also how often the stop flag is looked at.</summary>
    public const long Step = 2 << 20;

    /// <summary>How often (in bytes populated) the host's available memory is read again.</summary>
    public const long MemoryCheckInterval = 64 << 20;

    private readonly GuestMemory _memory;
    private readonly IncomingRamPrefaultBudget _budget;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private Thread? _thread;
    private volatile bool _stopping;
    private long _populatedBytes;
    private int _outcome = (int)IncomingRamPrefaultOutcome.NotStarted;

    /// <summary>Creates the prefault for <paramref name="memory"/>; nothing runs until <see cref="Start"/>.</summary>
    public IncomingRamPrefault(GuestMemory memory, IncomingRamPrefaultBudget? budget = null, ILogger<IncomingRamPrefault>? logger = null)
    {
        _memory = memory;
        _budget = budget ?? IncomingRamPrefaultBudget.Default;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Bytes of RAM this prefault has populated so far. Any thread.</summary>
    public long PopulatedBytes => Interlocked.Read(ref _populatedBytes);

    /// <summary>How it ended, or that it is still running. Any thread.</summary>
    public IncomingRamPrefaultOutcome Outcome => (IncomingRamPrefaultOutcome)Volatile.Read(ref _outcome);

    /// <summary>
    /// Starts the background thread, once; later calls, and calls after <see cref="Yield"/>, do
    /// nothing. Called when the VM enters <c>inmigrate</c> waiting for a stream. Any thread.
    /// </summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_thread is not null || _stopping)
            {
                return;
            }

            Volatile.Write(ref _outcome, (int)IncomingRamPrefaultOutcome.Running);
            _thread = new Thread(Run) { Name = "ram prefault (incoming)", IsBackground = true };
            _thread.Start();
        }
    }

    /// <summary>
    /// Stops the prefault for good and waits for its populate call in flight (at most one
    /// <see cref="Step"/>). Called by the incoming side when the stream arrives, before the
    /// load begins; idempotent. Any thread except the prefault's own.
    /// </summary>
    public void Yield()
    {
        Thread? thread;
        lock (_lock)
        {
            _stopping = true;
            thread = _thread;
        }

        thread?.Join();
        Interlocked.CompareExchange(ref _outcome, (int)IncomingRamPrefaultOutcome.Yielded, (int)IncomingRamPrefaultOutcome.Running);
        Interlocked.CompareExchange(ref _outcome, (int)IncomingRamPrefaultOutcome.Yielded, (int)IncomingRamPrefaultOutcome.NotStarted);
    }

    /// <summary>Same as <see cref="Yield"/>.</summary>
    public void Dispose() => Yield();

    private void Run()
    {
        IncomingRamPrefaultOutcome outcome;
        try
        {
            try
            {
                ThreadNiceness.SetForCurrentThread(ThreadNiceness.Lowest);
            }
            catch (NativeCallException)
            {
                // Keep going at normal priority: still bounded by the stream's arrival.
            }

            outcome = PopulateAll();
        }
        catch (Exception error) when (error is NativeCallException or ObjectDisposedException)
        {
            LogFailed(error.Message);
            outcome = IncomingRamPrefaultOutcome.Failed;
        }

        Volatile.Write(ref _outcome, (int)outcome);
        LogEnded(outcome.ToString(), PopulatedBytes);
    }

    private IncomingRamPrefaultOutcome PopulateAll()
    {
        long sinceCheck = MemoryCheckInterval;
        foreach (RamBlock block in _memory.Blocks)
        {
            long chunksPerStep = Step / RamBlock.PopulateChunk;
            for (long first = 0; first < block.Populated.Count; first += chunksPerStep)
            {
                if (_stopping)
                {
                    return IncomingRamPrefaultOutcome.Yielded;
                }

                if (sinceCheck >= MemoryCheckInterval)
                {
                    sinceCheck = 0;
                    if (_budget.AvailableMemoryBytes() is long available && available - Step < _budget.MemoryReserveBytes)
                    {
                        LogMemoryLow(available, _budget.MemoryReserveBytes);
                        return IncomingRamPrefaultOutcome.StoppedForMemory;
                    }
                }

                long last = Math.Min(block.Populated.Count, first + chunksPerStep);
                if (!PopulateRun(block, first, last))
                {
                    return IncomingRamPrefaultOutcome.Unsupported;
                }

                sinceCheck += Step;
            }
        }

        return IncomingRamPrefaultOutcome.Completed;
    }

    /// <summary>Populates the unclaimed chunks of [first, last) in as few calls as the claims allow.</summary>
    private bool PopulateRun(RamBlock block, long first, long last)
    {
        long runStart = -1;
        for (long chunk = first; chunk <= last; chunk++)
        {
            bool mine = chunk < last && block.Populated.TryClaim(chunk);
            if (mine && runStart < 0)
            {
                runStart = chunk;
            }
            else if (!mine && runStart >= 0)
            {
                long offset = runStart * RamBlock.PopulateChunk;
                long length = Math.Min((chunk - runStart) * RamBlock.PopulateChunk, block.UsedLength - offset);
                if (!block.Populate(offset, length))
                {
                    return false;
                }

                Interlocked.Add(ref _populatedBytes, length);
                runStart = -1;
            }
        }

        return true;
    }

    [LoggerMessage(EventId = 4030, Level = LogLevel.Debug, Message = "RAM prefault (incoming) ended: {Outcome}, {Bytes} bytes populated")]
    private partial void LogEnded(string outcome, long bytes);

    [LoggerMessage(EventId = 4031, Level = LogLevel.Information, Message = "RAM prefault (incoming) stopped: {Available} bytes available, below the reserve of {Reserve}")]
    private partial void LogMemoryLow(long available, long reserve);

    [LoggerMessage(EventId = 4032, Level = LogLevel.Warning, Message = "RAM prefault (incoming) failed: {Reason}")]
    private partial void LogFailed(string reason);
}
