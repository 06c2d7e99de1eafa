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

    private readonly object sync = new();
    private readonly IVfioSavingSource source;
    private readonly FileDescriptorHandle readEnd;
    private readonly FileDescriptorHandle writeEnd;
    private readonly Thread producer;
    private FileDescriptorHandle? userEnd;
    private bool stopCopy;
    private bool busy;        // bytes are produced or being produced that are not in the pipe yet
    private bool cancelled;
    private bool disposed;
    private Exception? failure;
    private ulong producedInitial;
    private ulong producedOther;
    private ulong written;
    private ulong readThroughSession;
    private ulong dirtyAllowance;   // dirty bytes the producer may still produce in precopy

    /// <summary>Opens the session and starts producing.</summary>
    /// <param name="source">The device's data.</param>
    /// <param name="stopCopy">True for a session opened by STOP→STOP_COPY.</param>
    /// <param name="name">Names the producer thread.</param>
    public VfioSavingSession(IVfioSavingSource source, bool stopCopy, string name)
    {
        this.source = source;
        this.stopCopy = stopCopy;
        PipeEnds pipe = Pipe.Create();
        readEnd = pipe.Read;
        writeEnd = pipe.Write;
        busy = true;
        producer = new Thread(Produce) { IsBackground = true, Name = $"{name} saving" };
        producer.Start();
    }

    /// <summary>A new descriptor for the read end: the data fd handed to the user, who owns it.</summary>
    public FileDescriptorHandle OpenDataFd()
    {
        FileDescriptorHandle fd = readEnd.Duplicate();
        userEnd = fd;
        return fd;
    }

    /// <summary>Whether <paramref name="fd"/> is the data fd this session handed out.</summary>
    public bool Owns(FileDescriptorHandle fd)
        => ReferenceEquals(fd, userEnd) || (userEnd is { IsClosed: false } && !fd.IsClosed && fd.Number == userEnd.Number);

    /// <summary>Switches the session to stop-copy: the producer finishes the state, then closes the pipe.</summary>
    public void EnterStopCopy()
    {
        lock (sync)
        {
            stopCopy = true;
            busy = true;
            Monitor.PulseAll(sync);
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
        lock (sync)
        {
            while (!stopCopy && !cancelled)
            {
                ThrowIfFailed();
                if (Pipe.QueuedBytes(readEnd) > 0)
                {
                    break;
                }
                if (!busy)
                {
                    throw new NativeCallException("read", Errno.ENOMSG, $"fd {fd.Number}: no precopy data for now");
                }
                Monitor.Wait(sync, ReaderRecheck);
            }
        }
        int count = fd.Read(buffer);
        lock (sync)
        {
            readThroughSession += (ulong)count;
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
        lock (sync)
        {
            ThrowIfFailed();
            // Reads through Read are counted exactly; plain read(2) is inferred from what left the pipe,
            // which misses at most the part of one slice that is still being written.
            ulong queued = (ulong)Pipe.QueuedBytes(readEnd);
            ulong consumed = Math.Max(readThroughSession, written > queued ? written - queued : 0);
            ulong initial = source.PendingInitialBytes
                + (producedInitial > consumed ? producedInitial - consumed : 0);
            ulong consumedOther = consumed > producedInitial ? consumed - producedInitial : 0;
            ulong dirty = source.PendingDirtyBytes
                + (producedOther > consumedOther ? producedOther - consumedOther : 0);
            dirtyAllowance = source.PendingDirtyBytes;
            if (!busy && !stopCopy && source.PendingInitialBytes + dirtyAllowance > 0)
            {
                busy = true;
                Monitor.PulseAll(sync);
            }
            return (initial, dirty);
        }
    }

    /// <summary>Ends the session: stops the producer, drains and closes the pipe (the data fd then reads EOF).</summary>
    public void Dispose()
    {
        lock (sync)
        {
            if (disposed)
            {
                return;
            }
            disposed = true;
            cancelled = true;
            Monitor.PulseAll(sync);
        }
        // The producer may be blocked writing into a full pipe: drain it until the producer is gone.
        byte[]? scratch = null;
        while (!producer.Join(0))
        {
            if (!DrainQueued(ref scratch))
            {
                producer.Join(1);
            }
        }
        while (DrainQueued(ref scratch))
        {
        }
        writeEnd.Dispose();
        readEnd.Dispose();
    }

    private bool DrainQueued(ref byte[]? scratch)
    {
        int queued = Pipe.QueuedBytes(readEnd);
        if (queued <= 0)
        {
            return false;
        }
        scratch ??= new byte[DrainBufferSize];
        readEnd.Read(scratch.AsSpan(0, Math.Min(queued, scratch.Length)));
        return true;
    }

    private void ThrowIfFailed()
    {
        if (failure is not null)
        {
            throw new NativeCallException("read", Errno.EIO, $"saving data producer failed: {failure.Message}");
        }
    }

    private void Produce()
    {
        var buffer = new ArrayBufferWriter<byte>(DrainBufferSize + 256);
        try
        {
            while (true)
            {
                lock (sync)
                {
                    while (true)
                    {
                        if (cancelled)
                        {
                            return;
                        }
                        buffer.ResetWrittenCount();
                        bool mayProduce = stopCopy || dirtyAllowance > 0 || source.PendingInitialBytes > 0;
                        VfioSavingPiece piece = mayProduce ? source.ProduceNext(buffer, stopCopy) : VfioSavingPiece.Nothing;
                        if (piece != VfioSavingPiece.Nothing)
                        {
                            busy = true;
                            ulong size = (ulong)buffer.WrittenCount;
                            if (piece == VfioSavingPiece.Initial)
                            {
                                producedInitial += size;
                            }
                            else
                            {
                                producedOther += size;
                                dirtyAllowance = dirtyAllowance > size ? dirtyAllowance - size : 0;
                            }
                            break;
                        }
                        if (stopCopy)
                        {
                            // The complete state is in the pipe: EOF for the reader.
                            busy = false;
                            writeEnd.Dispose();
                            Monitor.PulseAll(sync);
                            return;
                        }
                        busy = false;
                        Monitor.PulseAll(sync);
                        Monitor.Wait(sync);
                    }
                }
                ReadOnlySpan<byte> data = buffer.WrittenSpan;
                while (!data.IsEmpty)
                {
                    int count = writeEnd.Write(data[..Math.Min(data.Length, WriteSlice)]);
                    data = data[count..];
                    lock (sync)
                    {
                        written += (ulong)count;
                        Monitor.PulseAll(sync);
                        if (cancelled)
                        {
                            return;
                        }
                    }
                }
            }
        }
        catch (Exception error)
        {
            lock (sync)
            {
                failure = error;
                busy = false;
                writeEnd.Dispose();
                Monitor.PulseAll(sync);
            }
        }
    }
}
