using Microsoft.Extensions.Logging;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Migration.Multifd;

/// <summary>
/// The destination's multifd channels (QEMU 7.2's <c>multifd_recv_state</c>). <see cref="Accept"/>
/// takes the channel connections that follow the main one, reads each init packet (channel id
/// below <c>multifd-channels</c>, each id once) and starts a thread per channel that writes pages
/// into guest RAM. <see cref="SyncMain"/> runs on the loading thread at every RAM EOS: it waits
/// for one SYNC packet from every channel, then lets them all read on.
/// </summary>
public sealed partial class MultifdReceiver : IDisposable
{
    private readonly MultifdReceiveChannel?[] _channels;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _syncs = new(0);
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _failure = new();
    private readonly CancellationTokenSource _ended = new();
    private readonly CancellationTokenSource _syncImpossible;
    private volatile Exception? _endedEarly;
    private readonly Action<Exception>? _failed;
    private volatile Exception? _error;
    private long _syncCount;
    private int _disposed;

    private MultifdReceiver(int channels, ILogger logger, Action<Exception>? failed)
    {
        _channels = new MultifdReceiveChannel?[channels];
        _logger = logger;
        _failed = failed;
        _syncImpossible = CancellationTokenSource.CreateLinkedTokenSource(_failure.Token, _ended.Token);
    }

    /// <summary>The channels' count.</summary>
    public int ChannelCount => _channels.Length;

    /// <summary>The first channel failure, if any. Any thread.</summary>
    public Exception? Error => _error;

    /// <summary>Data pages the channels have written into guest RAM. Any thread.</summary>
    public long PagesReceived => _channels.Sum(c => c?.PagesReceived ?? 0);

    /// <summary>Sync points passed.</summary>
    public long SyncCount => Interlocked.Read(ref _syncCount);

    internal CancellationToken Stopping => _stopping.Token;

    /// <summary>
    /// Accepts <paramref name="channels"/> connections with <paramref name="accept"/> (which also
    /// runs TLS when set), reads and checks their init packets and starts their threads.
    /// <paramref name="failed"/> runs on a failing channel's thread (e.g. to shut the main
    /// connection so the load stops). Incoming thread, big lock not held.
    /// </summary>
    /// <exception cref="MultifdChannelException">An init packet is wrong or a connection failed.</exception>
    public static MultifdReceiver Accept(
        int channels, Func<CancellationToken, System.IO.Stream> accept, GuestMemory memory, CancellationToken cancel, ILogger logger,
        Action<Exception>? failed = null, Guid uuid = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        var receiver = new MultifdReceiver(channels, logger, failed);
        try
        {
            byte[] init = new byte[MultifdWire.InitPacketSize];
            for (int accepted = 0; accepted < channels; accepted++)
            {
                System.IO.Stream transport = accept(cancel);
                MultifdInitPacket packet;
                try
                {
                    ReadInit(transport, init, accepted);
                    packet = MultifdInitPacket.Decode(init, channels, uuid);
                    if (receiver._channels[packet.ChannelId] is not null)
                    {
                        throw new MultifdChannelException(packet.ChannelId, 0, MultifdField.ChannelId, $"channel id {packet.ChannelId} was already set up");
                    }
                }
                catch
                {
                    transport.Dispose();
                    throw;
                }

                var channel = new MultifdReceiveChannel(packet.ChannelId, transport, memory, receiver, logger);
                receiver._channels[packet.ChannelId] = channel;
                channel.Start();
            }
        }
        catch
        {
            receiver.Dispose();
            throw;
        }

        receiver.LogAccepted(channels);
        return receiver;
    }

    private static void ReadInit(System.IO.Stream transport, byte[] init, int accepted)
    {
        try
        {
            transport.ReadExactly(init);
        }
        catch (Exception error) when (error is IOException or EndOfStreamException)
        {
            throw new MultifdChannelException(
                -1, 0, MultifdField.Header, $"reading the init packet of connection {accepted + 1} failed: {error.Message}", error);
        }
    }

    /// <summary>
    /// The sync point at a RAM EOS (QEMU's <c>multifd_recv_sync_main</c>): waits until every
    /// channel has read a SYNC packet (so every page sent before it is in RAM), then releases
    /// them. Loading thread; <paramref name="whileWaiting"/> may release the big lock meanwhile.
    /// </summary>
    /// <exception cref="MultifdChannelException">A channel failed.</exception>
    public void SyncMain(Func<IDisposable?>? whileWaiting = null)
    {
        using (whileWaiting?.Invoke())
        {
            for (int i = 0; i < _channels.Length; i++)
            {
                try
                {
                    _syncs.Wait(_syncImpossible.Token);
                }
                catch (OperationCanceledException)
                {
                    throw _error ?? _endedEarly
                        ?? new MultifdChannelException(-1, -1, MultifdField.Header, "the multifd channels were shut down");
                }
            }
        }

        Interlocked.Increment(ref _syncCount);
        foreach (MultifdReceiveChannel? channel in _channels)
        {
            channel?.Release();
        }
    }

    internal void SyncArrived() => _syncs.Release();

    /// <summary>
    /// A channel's connection ended between packets. Fine after the last sync point; before one,
    /// that sync can never complete, so a waiting (or later) <see cref="SyncMain"/> fails.
    /// </summary>
    internal void ChannelEnded(int channel, long packet)
    {
        Interlocked.CompareExchange(
            ref _endedEarly,
            new MultifdChannelException(channel, packet, MultifdField.Header, "the connection ended before the SYNC packet the main stream waits for"),
            null);
        try
        {
            _ended.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    internal void ChannelFailed(Exception error)
    {
        if (Interlocked.CompareExchange(ref _error, error, null) is not null)
        {
            return;
        }

        LogChannelFailed(error, error.Message);
        try
        {
            _failure.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        _failed?.Invoke(error);
    }

    /// <summary>Shuts every channel's connection down (a blocked <see cref="SyncMain"/> then fails). Any thread.</summary>
    public void Shutdown()
    {
        foreach (MultifdReceiveChannel? channel in _channels)
        {
            channel?.Shutdown();
        }
    }

    /// <summary>Stops the channels (shutting their connections), waits for their threads and closes them. Calling it again does nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        foreach (MultifdReceiveChannel? channel in _channels)
        {
            channel?.Shutdown();
        }

        for (int i = _channels.Length - 1; i >= 0; i--)
        {
            _channels[i]?.Dispose();
        }

        _stopping.Dispose();
        _syncImpossible.Dispose();
        _ended.Dispose();
        _failure.Dispose();
        _syncs.Dispose();
    }

    [LoggerMessage(EventId = 7102, Level = LogLevel.Information, Message = "multifd: {Channels} receive channel(s) connected")]
    private partial void LogAccepted(int channels);

    [LoggerMessage(EventId = 7103, Level = LogLevel.Error, Message = "multifd receive channel failed: {Reason}")]
    private partial void LogChannelFailed(Exception error, string reason);
}
