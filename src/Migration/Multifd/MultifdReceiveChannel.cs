using Microsoft.Extensions.Logging;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Transport;
using MiniVmm.Native;

namespace MiniVmm.Migration.Multifd;

/// <summary>
/// One destination-side multifd channel on its own thread (<c>multifdrecv_N</c>): reads packet
/// headers, checks every field before touching memory, then reads the page data from the
/// connection straight into the guest pages (runs of adjacent pages in one read). After a SYNC
/// packet it tells the <see cref="MultifdReceiver"/> and waits until the loading thread has
/// reached the matching EOS, so that no page of a later round lands before the main stream's
/// records of the earlier one. Ends at the end of the connection between packets.
/// </summary>
internal sealed partial class MultifdReceiveChannel : IDisposable
{
    private readonly System.IO.Stream _transport;
    private readonly System.Runtime.InteropServices.SafeHandle? _socket;
    private readonly GuestMemory _memory;
    private readonly MultifdReceiver _owner;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _release = new(0);
    private readonly Thread _thread;
    private long _pages;
    private long _packets;
    private bool _populateUnsupported;
    private int _disposed;

    public MultifdReceiveChannel(int id, System.IO.Stream transport, GuestMemory memory, MultifdReceiver owner, ILogger logger)
    {
        Id = id;
        _transport = transport;
        _socket = (transport as System.Net.Sockets.NetworkStream)?.Socket.SafeHandle;
        _memory = memory;
        _owner = owner;
        _logger = logger;
        _thread = new Thread(Run) { Name = $"multifdrecv_{id}", IsBackground = true };
    }

    /// <summary>The channel id from the init packet.</summary>
    public int Id { get; }

    /// <summary>Data pages written into guest RAM so far.</summary>
    public long PagesReceived => Interlocked.Read(ref _pages);

    /// <summary>Packets read so far (the init packet not counted).</summary>
    public long PacketsReceived => Interlocked.Read(ref _packets);

    public void Start() => _thread.Start();

    /// <summary>Lets the thread read on after a SYNC packet. Loading thread.</summary>
    public void Release() => _release.Release();

    /// <summary>Wakes the thread out of a blocked read.</summary>
    public void Shutdown() => TransportShutdown.Shutdown(_transport);

    private void Run()
    {
        byte[] header = new byte[MultifdWire.PacketHeaderSize];
        long index = 0;
        try
        {
            while (true)
            {
                index++;
                if (!ReadHeader(header, index))
                {
                    LogChannelEnded(Id, index - 1, PagesReceived);
                    _owner.ChannelEnded(Id, index);
                    return;
                }

                MultifdPacketInfo packet = MultifdPacketHeader.Decode(header, Id, index);
                if (packet.NormalPages > 0)
                {
                    RamBlock block = ResolveBlock(header, packet, index);
                    ReadPages(header, packet, block, index);
                }

                Interlocked.Increment(ref _packets);
                if (packet.IsSync)
                {
                    _owner.SyncArrived();
                    _release.Wait(_owner.Stopping);
                }
            }
        }
        catch (OperationCanceledException) when (_owner.Stopping.IsCancellationRequested)
        {
            // The receiver is closing.
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            var failure = error as MultifdChannelException
                ?? new MultifdChannelException(Id, index, MultifdField.Header, $"receiving failed: {error.Message}", error);
            _owner.ChannelFailed(failure);
        }
    }

    /// <summary>Reads a whole header; false at a clean end of the connection before its first byte.</summary>
    private bool ReadHeader(byte[] header, long index)
    {
        int got;
        try
        {
            got = Fill(header);
        }
        catch (Exception error) when (error is IOException or ObjectDisposedException or NativeCallException)
        {
            ThrowIfStopping();

            throw new MultifdChannelException(Id, index, MultifdField.Header, $"reading the header failed: {error.Message}", error);
        }

        if (got == header.Length)
        {
            return true;
        }

        if (got == 0)
        {
            return false;
        }

        throw new MultifdChannelException(
            Id, index, MultifdField.Header, $"the connection ended {got} bytes into the {header.Length}-byte header");
    }

    /// <summary>
    /// Reads until <paramref name="destination"/> is full or the connection ends; the bytes read.
    /// On a socket one recv with MSG_WAITALL per buffer (<see cref="WholeReceive"/>), so the
    /// thread wakes once per run of pages, not once per segment; other transports read in a loop.
    /// </summary>
    private int Fill(Span<byte> destination) =>
        _socket is not null
            ? WholeReceive.ReceiveAll(_socket, destination)
            : _transport.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false);

    /// <summary>A read that failed or ended because the receiver is closing is a cancellation, not a channel error.</summary>
    private void ThrowIfStopping()
    {
        if (_owner.Stopping.IsCancellationRequested)
        {
            throw new OperationCanceledException(_owner.Stopping);
        }
    }

    private RamBlock ResolveBlock(byte[] header, MultifdPacketInfo packet, long index)
    {
        ReadOnlySpan<byte> name = MultifdPacketHeader.BlockName(header);
        RamBlock block = _memory.FindBlock(name)
            ?? throw new MultifdChannelException(
                Id, index, MultifdField.RamBlock, $"unknown RAM block '{System.Text.Encoding.UTF8.GetString(name)}'");
        ulong last = (ulong)(block.UsedLength - MultifdWire.PageSize);
        for (int i = 0; i < packet.NormalPages; i++)
        {
            ulong offset = MultifdPacketHeader.Offset(header, i);
            if (block.UsedLength < MultifdWire.PageSize || offset > last)
            {
                throw new MultifdChannelException(
                    Id, index, MultifdField.Offset,
                    $"offset[{i}] = 0x{offset:x} is outside RAM block '{block.IdStr}' (0x{block.UsedLength:x} bytes)");
            }
        }

        return block;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void ReadPages(byte[] header, MultifdPacketInfo packet, RamBlock block, long index)
    {
        int i = 0;
        while (i < packet.NormalPages)
        {
            long first = (long)MultifdPacketHeader.Offset(header, i);
            int run = 1;
            while (i + run < packet.NormalPages && (long)MultifdPacketHeader.Offset(header, i + run) == first + ((long)run * MultifdWire.PageSize))
            {
                run++;
            }

            Populate(block, first, run * MultifdWire.PageSize);
            int got;
            try
            {
                got = Fill(block.GetSpan(first, run * MultifdWire.PageSize));
            }
            catch (Exception error) when (error is IOException or ObjectDisposedException or NativeCallException)
            {
                ThrowIfStopping();

                throw new MultifdChannelException(
                    Id, index, MultifdField.PageData, $"reading page {i} (offset 0x{first:x}) of {packet.NormalPages} failed: {error.Message}", error);
            }

            if (got < run * MultifdWire.PageSize)
            {
                ThrowIfStopping();

                throw new MultifdChannelException(
                    Id, index, MultifdField.PageData,
                    $"reading page {i + (got / MultifdWire.PageSize)} (offset 0x{first + (got / MultifdWire.PageSize * MultifdWire.PageSize):x}) of {packet.NormalPages} failed: the connection ended {got} bytes into a run of {run} pages");
            }

            i += run;
            Interlocked.Add(ref _pages, run);
        }
    }

    /// <summary>
    /// Allocates the 64 KiB chunks a read is about to fill, one call per chunk no other populater
    /// has claimed, instead of one page fault per page inside the socket read (several times
    /// faster on a fresh destination; a no-op where RAM was preallocated).
    /// </summary>
    private void Populate(RamBlock block, long offset, int length)
    {
        if (_populateUnsupported)
        {
            return;
        }

        for (long chunk = offset / RamBlock.PopulateChunk; chunk <= (offset + length - 1) / RamBlock.PopulateChunk; chunk++)
        {
            if (!block.PopulateChunkOnce(chunk))
            {
                _populateUnsupported = true;
                return;
            }
        }
    }

    /// <summary>Waits for the thread (after a shutdown or the end of its connection), then closes the connection.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

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

        _release.Dispose();
    }

    [LoggerMessage(EventId = 7120, Level = LogLevel.Debug, Message = "multifd receive channel {Channel} ended after {Packets} packets, {Pages} pages")]
    private partial void LogChannelEnded(int channel, long packets, long pages);
}
