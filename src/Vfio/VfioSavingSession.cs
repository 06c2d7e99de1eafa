using System.Buffers;
using MiniVmm.Native;

namespace MiniVmm.Vfio;

/// <summary>
/// One saving data session (PRE_COPY / PRE_COPY_P2P / STOP_COPY share it): a pipe whose read end
/// is the data fd, and a producer thread that writes the source's pieces into it. In stop-copy the
/// producer closes the write end after the last piece, so read(2) on the data fd sees a real EOF.
/// In precopy the producer idles when the source has nothing for now; <see cref="Read"/> then
/// reports the temporary end with ENOMSG. In precopy the producer writes the initial data and then
/// only as many dirty bytes as were dirty when <see cref="PrecopyInfo"/> last ran (the way mlx5
/// prepares the next chunk on the PRECOPY_INFO ioctl), so a device that keeps dirtying its state
/// still reaches a temporary end.
/// </summary>
internal sealed class VfioSavingSession : IDisposable
{
    private const int DrainBufferSize = 64 * 1024;

    // Writes go into the pipe in slices no larger than half its capacity, and the producer signals
    // after each: a write larger than the pipe could block with part of it queued and no signal,
    // while a reader waits for one. A slice's remainder always fits an emptied pipe.
    private const int WriteSlice = 32 * 1024;

    // Safety net for the reader's wait; normally the producer's signals wake it.
    private static readonly TimeSpan ReaderRecheck = TimeSpan.FromMilliseconds(20);

    private readonly object _sync = new();
    private readonly IVfioSavingSource _source;
    private readonly FileDescriptorHandle _readEnd;
    private readonly FileDescriptorHandle _writeEnd;
    private readonly Thread _producer;
    private FileDescriptorHandle? _userEnd;
    private bool _stopCopy;
    private bool _busy;        // bytes are produced or being produced that are not in the pipe yet
    private bool _cancelled;
    private bool _disposed;
    private Exception? _failure;
    private ulong _producedInitial;
    private ulong _producedOther;
    private ulong _written;
    private ulong _readThroughSession;
    private ulong _dirtyAllowance;   // dirty bytes the producer may still produce in precopy

    /// <summary>Opens the session and starts producing.</summary>
    /// <param name="source">The device's data.</param>
    /// <param name="stopCopy">True for a session opened by STOP→STOP_COPY.</param>
    /// <param name="name">Names the producer thread.</param>
    public VfioSavingSession(IVfioSavingSource source, bool stopCopy, string name)
    {
        _source = source;
        _stopCopy = stopCopy;
        PipeEnds pipe = Pipe.Create();
        _readEnd = pipe.Read;
        _writeEnd = pipe.Write;
        _busy = true;
        _producer = new Thread(Produce) { IsBackground = true, Name = $"{name} saving" };
        _producer.Start();
    }

    /// <summary>A new descriptor for the read end: the data fd handed to the user, who owns it.</summary>
    public FileDescriptorHandle OpenDataFd()
    {
        FileDescriptorHandle fd = _readEnd.Duplicate();
        _userEnd = fd;
        return fd;
    }

    /// <summary>Whether <paramref name="fd"/> is the data fd this session handed out.</summary>
    public bool Owns(FileDescriptorHandle fd)
        => ReferenceEquals(fd, _userEnd) || (_userEnd is { IsClosed: false } && !fd.IsClosed && fd.Number == _userEnd.Number);

    /// <summary>Switches the session to stop-copy: the producer finishes the state, then closes the pipe.</summary>
    public void EnterStopCopy()
    {
        lock (_sync)
        {
            _stopCopy = true;
            _busy = true;
            Monitor.PulseAll(_sync);
        }
    }

    /// <summary>
    /// read(2) on the data fd with the uAPI's precopy semantics: in precopy, when nothing is queued and
    /// nothing is being produced, throws <see cref="NativeCallException"/> with ENOMSG (a temporary end);
    /// in stop-copy returns 0 at the end of the state.
    /// </summary>
    public int Read(FileDescriptorHandle fd, Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        lock (_sync)
        {
            while (!_stopCopy && !_cancelled)
            {
                ThrowIfFailed();
                if (Pipe.QueuedBytes(_readEnd) > 0)
                {
                    break;
                }
                if (!_busy)
                {
                    throw new NativeCallException("read", Errno.ENOMSG, $"fd {fd.Number}: no precopy data for now");
                }
                Monitor.Wait(_sync, ReaderRecheck);
            }
        }
        int count = fd.Read(buffer);
        lock (_sync)
        {
            _readThroughSession += (ulong)count;
            if (count == 0)
            {
                ThrowIfFailed();
            }
        }
        return count;
    }

    /// <summary>
    /// The initial and dirty bytes the reader has not read yet (VFIO_MIG_GET_PRECOPY_INFO), and
    /// re-arms the producer when the source has new data.
    /// </summary>
    public (ulong InitialBytes, ulong DirtyBytes) PrecopyInfo()
    {
        lock (_sync)
        {
            ThrowIfFailed();
            // Reads through Read are counted exactly; plain read(2) is inferred from what left the pipe,
            // which misses at most the part of one slice that is still being written.
            ulong queued = (ulong)Pipe.QueuedBytes(_readEnd);
            ulong consumed = Math.Max(_readThroughSession, _written > queued ? _written - queued : 0);
            ulong initial = _source.PendingInitialBytes
                + (_producedInitial > consumed ? _producedInitial - consumed : 0);
            ulong consumedOther = consumed > _producedInitial ? consumed - _producedInitial : 0;
            ulong dirty = _source.PendingDirtyBytes
                + (_producedOther > consumedOther ? _producedOther - consumedOther : 0);
            _dirtyAllowance = _source.PendingDirtyBytes;
            if (!_busy && !_stopCopy && _source.PendingInitialBytes + _dirtyAllowance > 0)
            {
                _busy = true;
                Monitor.PulseAll(_sync);
            }
            return (initial, dirty);
        }
    }

    /// <summary>Ends the session: stops the producer, drains and closes the pipe (the data fd then reads EOF).</summary>
    public void Dispose()
    {
        lock (_sync)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _cancelled = true;
            Monitor.PulseAll(_sync);
        }
        // The producer may be blocked writing into a full pipe: drain it until the producer is gone.
        byte[]? scratch = null;
        while (!_producer.Join(0))
        {
            if (!DrainQueued(ref scratch))
            {
                _producer.Join(1);
            }
        }
        while (DrainQueued(ref scratch))
        {
        }
        _writeEnd.Dispose();
        _readEnd.Dispose();
    }

    private bool DrainQueued(ref byte[]? scratch)
    {
        int queued = Pipe.QueuedBytes(_readEnd);
        if (queued <= 0)
        {
            return false;
        }
        scratch ??= new byte[DrainBufferSize];
        _readEnd.Read(scratch.AsSpan(0, Math.Min(queued, scratch.Length)));
        return true;
    }

    private void ThrowIfFailed()
    {
        if (_failure is not null)
        {
            throw new NativeCallException("read", Errno.EIO, $"saving data producer failed: {_failure.Message}");
        }
    }

    private void Produce()
    {
        var buffer = new ArrayBufferWriter<byte>(DrainBufferSize + 256);
        try
        {
            while (true)
            {
                lock (_sync)
                {
                    while (true)
                    {
                        if (_cancelled)
                        {
                            return;
                        }
                        buffer.ResetWrittenCount();
                        bool mayProduce = _stopCopy || _dirtyAllowance > 0 || _source.PendingInitialBytes > 0;
                        VfioSavingPiece piece = mayProduce ? _source.ProduceNext(buffer, _stopCopy) : VfioSavingPiece.Nothing;
                        if (piece != VfioSavingPiece.Nothing)
                        {
                            _busy = true;
                            ulong size = (ulong)buffer.WrittenCount;
                            if (piece == VfioSavingPiece.Initial)
                            {
                                _producedInitial += size;
                            }
                            else
                            {
                                _producedOther += size;
                                _dirtyAllowance = _dirtyAllowance > size ? _dirtyAllowance - size : 0;
                            }
                            break;
                        }
                        if (_stopCopy)
                        {
                            // The complete state is in the pipe: EOF for the reader.
                            _busy = false;
                            _writeEnd.Dispose();
                            Monitor.PulseAll(_sync);
                            return;
                        }
                        _busy = false;
                        Monitor.PulseAll(_sync);
                        Monitor.Wait(_sync);
                    }
                }
                ReadOnlySpan<byte> data = buffer.WrittenSpan;
                while (!data.IsEmpty)
                {
                    int count = _writeEnd.Write(data[..Math.Min(data.Length, WriteSlice)]);
                    data = data[count..];
                    lock (_sync)
                    {
                        _written += (ulong)count;
                        Monitor.PulseAll(_sync);
                        if (_cancelled)
                        {
                            return;
                        }
                    }
                }
            }
        }
        catch (Exception error)
        {
            lock (_sync)
            {
                _failure = error;
                _busy = false;
                _writeEnd.Dispose();
                Monitor.PulseAll(_sync);
            }
        }
    }
}
