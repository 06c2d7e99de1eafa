using Microsoft.Extensions.Logging;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Migration.Multifd;

/// <summary>
/// The source's multifd channels (QEMU 7.2's <c>multifd_send_state</c>): collects data pages of
/// one block into packets of up to 128 pages and hands each full packet to the next channel with
/// room in its queue (QEMU too picks an idle channel), waiting only when every queue is full; <see cref="Sync"/>, called before every RAM EOS of the main stream, sends what is
/// collected and a SYNC packet on every channel and returns once each channel has written it.
/// Packet numbers count across all channels. <see cref="QueuePage"/>, <see cref="Sync"/> and
/// <see cref="Flush"/> run on the migration thread only (under the RAM handler's bitmap lock);
/// a channel that fails cancels them with its <see cref="MultifdChannelException"/>.
/// </summary>
public sealed partial class MultifdSender : IDisposable
{
    private readonly MultifdSendChannel[] _channels;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _failure = new();
    private readonly MultifdQueueRoom _room = new();
    private readonly CancellationTokenRegistration _wakeOnFailure;
    private readonly Action<Exception>? _failed;
    private RamBlock? _block;
    private long[] _offsets = new long[MultifdWire.MaxPagesPerPacket];
    private int _count;
    private ulong _packetNumber;
    private int _next;
    private long _bytes;
    private volatile Exception? _error;
    private int _disposed;

    private MultifdSender(int channels, ILogger logger, Action<Exception>? failed)
    {
        _channels = new MultifdSendChannel[channels];
        _logger = logger;
        _failed = failed;
        _wakeOnFailure = _failure.Token.Register(_room.WakeAll);
    }

    /// <summary>The channels' count.</summary>
    public int ChannelCount => _channels.Length;

    /// <summary>
    /// Bytes handed to the channels (headers and pages, not the init packets): QEMU 7.2's
    /// <c>multifd-bytes</c>. Any thread.
    /// </summary>
    public long BytesQueued => Interlocked.Read(ref _bytes);

    /// <summary>The first channel failure, if any. Any thread.</summary>
    public Exception? Error => _error;

    /// <summary>
    /// Opens <paramref name="channels"/> connections with <paramref name="connect"/> (each one
    /// after the main connection, in id order, as QEMU does) and starts their threads, each
    /// beginning with its init packet. <paramref name="failed"/> runs on the failing channel's
    /// thread (e.g. to shut the main connection down). Migration thread.
    /// </summary>
    public static MultifdSender Open(
        int channels, Func<CancellationToken, System.IO.Stream> connect, CancellationToken cancel, ILogger logger,
        Action<Exception>? failed = null, Guid uuid = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(channels, 255);
        var sender = new MultifdSender(channels, logger, failed);
        try
        {
            for (int i = 0; i < channels; i++)
            {
                System.IO.Stream transport = connect(cancel);
                var channel = new MultifdSendChannel(i, transport, uuid, sender._room, logger, sender.ChannelFailed);
                sender._channels[i] = channel;
                channel.Start();
            }
        }
        catch
        {
            sender.Shutdown();
            sender.Dispose();
            throw;
        }

        sender.LogOpened(channels);
        return sender;
    }

    /// <summary>
    /// Adds the data page at <paramref name="offset"/> of <paramref name="block"/> to the packet
    /// being collected; returns the bytes handed to a channel by this call (a full packet, or a
    /// packet of another block sent first), else 0. Migration thread.
    /// </summary>
    /// <exception cref="MultifdChannelException">A channel failed.</exception>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public long QueuePage(RamBlock block, long offset)
    {
        long sent = 0;
        if (_block is not null && !ReferenceEquals(block, _block))
        {
            sent = Flush();
        }

        _block = block;
        _offsets[_count++] = offset;
        if (_count == MultifdWire.MaxPagesPerPacket)
        {
            sent += Flush();
        }

        return sent;
    }

    /// <summary>Hands the packet being collected (if any) to the next channel; returns its bytes. Migration thread.</summary>
    /// <exception cref="MultifdChannelException">A channel failed.</exception>
    public long Flush()
    {
        if (_count == 0)
        {
            return 0;
        }

        var job = new MultifdSendJob(_block, _offsets, _count, MultifdPacketFlags.None, _packetNumber++);
        _offsets = new long[MultifdWire.MaxPagesPerPacket];
        _count = 0;
        _block = null;
        Enqueue(job, only: null);
        return job.WireBytes;
    }

    /// <summary>
    /// The sync point before a RAM EOS (QEMU's <c>multifd_send_sync_main</c>): flushes, queues
    /// a SYNC packet on every channel and waits until every channel has written it. Returns the
    /// bytes handed to the channels. Migration thread.
    /// </summary>
    /// <exception cref="MultifdChannelException">A channel failed.</exception>
    public long Sync()
    {
        long sent = Flush();
        foreach (MultifdSendChannel channel in _channels)
        {
            var job = new MultifdSendJob(null, [], 0, MultifdPacketFlags.Sync, _packetNumber++);
            Enqueue(job, only: channel);
            sent += job.WireBytes;
        }

        foreach (MultifdSendChannel channel in _channels)
        {
            try
            {
                channel.WaitSyncSent(_failure.Token);
            }
            catch (OperationCanceledException)
            {
                throw Failure();
            }
        }

        return sent;
    }

    /// <summary>
    /// Queues <paramref name="job"/> on <paramref name="only"/>, or (null) on the first channel from
    /// the next in turn that has room; sleeps in <see cref="MultifdQueueRoom"/> while there is none.
    /// </summary>
    private void Enqueue(MultifdSendJob job, MultifdSendChannel? only)
    {
        try
        {
            while (true)
            {
                _failure.Token.ThrowIfCancellationRequested();
                long seen = _room.Generation;
                int candidates = only is null ? _channels.Length : 1;
                for (int k = 0; k < candidates; k++)
                {
                    int index = (_next + k) % _channels.Length;
                    MultifdSendChannel channel = only ?? _channels[index];
                    if (channel.TryEnqueue(job))
                    {
                        if (only is null)
                        {
                            _next = (index + 1) % _channels.Length;
                        }

                        Interlocked.Add(ref _bytes, job.WireBytes);
                        return;
                    }
                }

                _room.WaitForRoom(seen, _failure.Token);
            }
        }
        catch (Exception error) when (error is OperationCanceledException or InvalidOperationException or ObjectDisposedException)
        {
            throw Failure();
        }
    }

    private Exception Failure() =>
        _error ?? new MultifdChannelException(-1, -1, MultifdField.Header, "the multifd channels were shut down");

    private void ChannelFailed(MultifdSendChannel channel, Exception error)
    {
        if (Interlocked.CompareExchange(ref _error, error, null) is not null)
        {
            return;
        }

        try
        {
            _failure.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        Shutdown();
        _failed?.Invoke(error);
    }

    /// <summary>Shuts every channel's connection down, waking threads blocked on it. Any thread.</summary>
    public void Shutdown()
    {
        foreach (MultifdSendChannel? channel in _channels)
        {
            channel?.Shutdown();
        }
    }

    /// <summary>
    /// Ends the channels: each thread writes what is queued, then the connections close (after
    /// a failure or <see cref="Shutdown"/> nothing more is written). Calling it again does nothing.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_error is not null)
        {
            Shutdown();
        }

        for (int i = _channels.Length - 1; i >= 0; i--)
        {
            _channels[i]?.Dispose();
        }

        _wakeOnFailure.Dispose();
        _failure.Dispose();
        LogClosed(Interlocked.Read(ref _bytes));
    }

    [LoggerMessage(EventId = 7100, Level = LogLevel.Information, Message = "multifd: {Channels} send channel(s) open")]
    private partial void LogOpened(int channels);

    [LoggerMessage(EventId = 7101, Level = LogLevel.Debug, Message = "multifd: send channels closed, {Bytes} bytes queued")]
    private partial void LogClosed(long bytes);
}
