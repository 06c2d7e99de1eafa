using Microsoft.Extensions.Logging;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.Transport;

namespace MiniVmm.Migration.Multifd;

/// <summary>
/// One source-side multifd channel on its own thread (<c>multifdsend_N</c>): writes the init
/// packet, then each queued packet — the header and the pages straight from guest RAM (gathered
/// sendmsg over a socket, no copy) — and signals each SYNC packet once it is written. At most
/// <see cref="QueueDepth"/> packets wait for the thread, so the migration thread cannot run ahead.
/// The queue's waits block without spinning (see <see cref="MultifdQueueRoom"/>): the thread
/// sleeps on the queue's lock while it is empty and is woken only if it sleeps.
/// </summary>
internal sealed partial class MultifdSendChannel : IDisposable
{
    /// <summary>Packets that may wait for the channel thread.</summary>
    public const int QueueDepth = 2;

    private readonly System.IO.Stream _transport;
    private readonly Guid _uuid;
    private readonly ILogger _logger;
    private readonly Action<MultifdSendChannel, Exception> _failed;
    private readonly object _jobsLock = new();
    private readonly Queue<MultifdSendJob> _jobs = new(QueueDepth);
    private readonly MultifdQueueRoom _room;
    private readonly SemaphoreSlim _syncSent = new(0);
    private readonly Thread _thread;
    private long _packets;
    private bool _completed;
    private bool _threadWaiting;
    private int _disposed;

    public MultifdSendChannel(
        int id, System.IO.Stream transport, Guid uuid, MultifdQueueRoom room, ILogger logger, Action<MultifdSendChannel, Exception> failed)
    {
        Id = id;
        _room = room;
        _transport = transport;
        _uuid = uuid;
        _logger = logger;
        _failed = failed;
        _thread = new Thread(Run) { Name = $"multifdsend_{id}", IsBackground = true };
    }

    /// <summary>The channel id sent in the init packet.</summary>
    public int Id { get; }

    /// <summary>Packets written so far (the init packet not counted).</summary>
    public long PacketsSent => Interlocked.Read(ref _packets);

    /// <summary>The channel's connection (to shut it down).</summary>
    public System.IO.Stream Transport => _transport;

    public void Start() => _thread.Start();

    /// <summary>
    /// Queues a packet unless the queue is full (false). Migration thread; takes the queue's lock.
    /// </summary>
    /// <exception cref="InvalidOperationException">The channel was completed.</exception>
    public bool TryEnqueue(MultifdSendJob job)
    {
        lock (_jobsLock)
        {
            if (_completed)
            {
                throw new InvalidOperationException($"multifd send channel {Id} takes no more packets");
            }

            if (_jobs.Count >= QueueDepth)
            {
                return false;
            }

            _jobs.Enqueue(job);
            if (_threadWaiting)
            {
                Monitor.Pulse(_jobsLock);
            }

            return true;
        }
    }

    /// <summary>Waits until the channel has written a queued SYNC packet. Migration thread.</summary>
    public void WaitSyncSent(CancellationToken cancel) => _syncSent.Wait(cancel);

    /// <summary>No more packets: the thread ends once the queue is written. Any thread; idempotent.</summary>
    public void CompleteAdding()
    {
        lock (_jobsLock)
        {
            _completed = true;
            Monitor.Pulse(_jobsLock);
        }
    }

    /// <summary>The next queued packet, sleeping while there is none; null once completed and empty. Channel thread.</summary>
    private MultifdSendJob? Take()
    {
        MultifdSendJob job;
        lock (_jobsLock)
        {
            while (_jobs.Count == 0)
            {
                if (_completed)
                {
                    return null;
                }

                _threadWaiting = true;
                Monitor.Wait(_jobsLock);
                _threadWaiting = false;
            }

            job = _jobs.Dequeue();
        }

        _room.Freed();
        return job;
    }

    private void Run()
    {
        long index = 0;
        try
        {
            using var writer = new MigrationStreamWriter(_transport, leaveOpen: true, bufferSize: 64 * 1024);
            Span<byte> init = stackalloc byte[MultifdWire.InitPacketSize];
            new MultifdInitPacket((byte)Id, _uuid).Encode(init);
            writer.PutBuffer(init);
            writer.Flush();
            byte[] header = new byte[MultifdWire.PacketHeaderSize];
            while (Take() is { } job)
            {
                index++;
                ReadOnlySpan<byte> name = job.Block is null ? default : job.Block.IdStrBytes;
                MultifdPacketHeader.Encode(header, job.Flags, job.PacketNumber, name, job.Offsets.AsSpan(0, job.Count));
                writer.PutBuffer(header);
                WritePages(writer, job);
                writer.Flush();
                Interlocked.Increment(ref _packets);
                if ((job.Flags & MultifdPacketFlags.Sync) != 0)
                {
                    _syncSent.Release();
                }
            }

            LogChannelDone(Id, index);
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            var failure = error as MultifdChannelException
                ?? new MultifdChannelException(Id, index, index == 0 ? MultifdField.Header : MultifdField.PageData, $"sending failed: {error.Message}", error);
            LogChannelFailed(failure, failure.Message);
            _failed(this, failure);
        }
    }

    /// <summary>Puts the job's pages after the header, runs of adjacent pages as one buffer.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void WritePages(MigrationStreamWriter writer, MultifdSendJob job)
    {
        int i = 0;
        while (i < job.Count)
        {
            int run = 1;
            while (i + run < job.Count && job.Offsets[i + run] == job.Offsets[i] + ((long)run * MultifdWire.PageSize))
            {
                run++;
            }

            writer.PutBufferByReference(job.Block!.GetSpan(job.Offsets[i], run * MultifdWire.PageSize));
            i += run;
        }
    }

    /// <summary>Waits for the thread (after <see cref="CompleteAdding"/> or a shutdown of the transport), then closes the connection.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        CompleteAdding();
        if (_thread.ThreadState != ThreadState.Unstarted)
        {
            _thread.Join();
        }

        try
        {
            _transport.Dispose();
        }
        catch (Exception error) when (error is IOException or ObjectDisposedException)
        {
        }

        _syncSent.Dispose();
    }

    /// <summary>Wakes the thread out of a blocked write.</summary>
    public void Shutdown() => TransportShutdown.Shutdown(_transport);

    [LoggerMessage(EventId = 7110, Level = LogLevel.Debug, Message = "multifd send channel {Channel} done after {Packets} packets")]
    private partial void LogChannelDone(int channel, long packets);

    [LoggerMessage(EventId = 7111, Level = LogLevel.Error, Message = "multifd send channel failed: {Reason}")]
    private partial void LogChannelFailed(Exception error, string reason);
}
