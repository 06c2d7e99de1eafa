using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace MiniVmm.Migration.Stream;

/// <summary>
/// The sending side of a migration byte stream: buffers big-endian integers, counted strings
/// and raw buffers in front of any <see cref="System.IO.Stream"/> transport, keeps the first
/// error sticky and carries the per-window rate-limit counters the migration thread uses.
/// Over a socket, <see cref="PutBufferByReference"/> queues a buffer that already lives in
/// place (a guest page) instead of copying it, and the buffered bytes and those buffers go out
/// together in gathered sends (sendmsg with up to 1024 buffers).
/// </summary>
/// <remarks>
/// Not thread-safe: one thread writes. <see cref="RateLimitBytes"/> and <see cref="SetError"/>
/// may be used from other threads (a parameter change, a cancel).
/// </remarks>
public sealed class MigrationStreamWriter : IDisposable
{
    /// <summary>Internal buffer size used when none is given: 1 MiB.</summary>
    public const int DefaultBufferSize = 1024 * 1024;

    /// <summary>Smallest accepted internal buffer size.</summary>
    public const int MinBufferSize = 4096;

    /// <summary>
    /// Buffers at least this long (or the buffer size, if smaller) skip the internal buffer:
    /// pending bytes are flushed and the buffer goes to the transport as it is.
    /// </summary>
    public const int DirectWriteThreshold = 64 * 1024;

    private const int MaxCountedStringLength = 255;

    private readonly System.IO.Stream _transport;
    private readonly bool _leaveOpen;
    private readonly byte[] _buffer;
    private readonly int _directThreshold;

    // The socket behind the transport when it is one (gathered sends); null otherwise.
    private readonly System.Runtime.InteropServices.SafeHandle? _socket;

    // The gathered send being built: buffer stretches and queued external buffers, in stream order.
    private readonly MiniVmm.Native.IoVector[] _vectors = [];
    private int _vectorCount;

    // Start of the buffered bytes not yet in _vectors, and the bytes of queued external buffers.
    private int _bufferMark;
    private long _pendingExternal;

    // Bytes of _buffer in use.
    private int _used;

    // Fast paths write only while _used + size <= _fastLimit. It is _buffer.Length while the
    // writer is healthy and -1 once it has failed or been disposed, so the state checks live
    // in the slow paths only.
    private int _fastLimit;

    // Bytes handed to the transport so far.
    private long _delivered;

    private long _windowStart;
    private long _windowExternal;
    private long _sentElsewhere;
    private long _rateLimit;

    private Exception? _error;
    private bool _disposed;

    /// <summary>Creates a writer over <paramref name="transport"/>.</summary>
    /// <param name="transport">Where the bytes go; must be writable.</param>
    /// <param name="leaveOpen">When false, disposing the writer disposes the transport.</param>
    /// <param name="bufferSize">Internal buffer size in bytes (at least <see cref="MinBufferSize"/>).</param>
    public MigrationStreamWriter(System.IO.Stream transport, bool leaveOpen = false, int bufferSize = DefaultBufferSize)
    {
        ArgumentNullException.ThrowIfNull(transport);
        if (!transport.CanWrite)
        {
            throw new ArgumentException("the transport is not writable", nameof(transport));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, MinBufferSize);
        _transport = transport;
        _leaveOpen = leaveOpen;
        _buffer = GC.AllocateUninitializedArray<byte>(bufferSize, pinned: true);
        _fastLimit = bufferSize;
        _directThreshold = Math.Min(bufferSize, DirectWriteThreshold);
        if (transport is System.Net.Sockets.NetworkStream network)
        {
            _socket = network.Socket.SafeHandle;
            _vectors = new MiniVmm.Native.IoVector[MiniVmm.Native.GatheredSend.MaxVectors];
        }
    }

    /// <summary>Whether <see cref="PutBufferByReference"/> avoids the copy (the transport is a socket).</summary>
    public bool SendsByReference => _socket is not null;

    /// <summary>Internal buffer size in bytes.</summary>
    public int BufferSize => _buffer.Length;

    /// <summary>All bytes accepted so far, whether still buffered or already delivered.</summary>
    public long BytesWritten => _delivered + _used + _pendingExternal;

    /// <summary>Bytes still waiting in the internal buffer.</summary>
    public long BytesBuffered => _used + _pendingExternal;

    /// <summary>The first error recorded, or null.</summary>
    public Exception? Error => Volatile.Read(ref _error);

    /// <summary>True once an error has been recorded.</summary>
    public bool HasError => Volatile.Read(ref _error) is not null;

    /// <summary>
    /// Bytes allowed per rate-limit window (QEMU: max-bandwidth / 10 for 100 ms windows);
    /// 0 or <see cref="long.MaxValue"/> means unlimited.
    /// </summary>
    public long RateLimitBytes
    {
        get => Volatile.Read(ref _rateLimit);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Volatile.Write(ref _rateLimit, value);
        }
    }

    /// <summary>Bytes counted against the current rate-limit window.</summary>
    public long BytesInCurrentWindow => BytesWritten - _windowStart + _windowExternal;

    /// <summary>
    /// True when the caller should stop sending for the rest of the window: the bytes of this
    /// window exceed a set limit (strictly more than it, as QEMU 7.2 tests), or the writer
    /// has failed.
    /// </summary>
    public bool IsRateLimited
    {
        get
        {
            if (HasError)
            {
                return true;
            }

            long limit = RateLimitBytes;
            return limit != 0 && limit != long.MaxValue && BytesInCurrentWindow > limit;
        }
    }

    /// <summary>Starts a new rate-limit window: <see cref="BytesInCurrentWindow"/> becomes 0.</summary>
    public void StartNewRateWindow()
    {
        _windowStart = BytesWritten;
        _windowExternal = 0;
    }

    /// <summary>
    /// Counts <paramref name="count"/> bytes sent outside this writer (e.g. on another
    /// channel) against the current rate-limit window.
    /// </summary>
    public void AccountForRateLimit(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _windowExternal += count;
        Volatile.Write(ref _sentElsewhere, _sentElsewhere + count);
    }

    /// <summary>
    /// Bytes counted by <see cref="AccountForRateLimit"/> so far: what went on other channels
    /// (multifd). With <see cref="BytesWritten"/>, all the migration has sent. Any thread.
    /// </summary>
    public long BytesSentElsewhere => Volatile.Read(ref _sentElsewhere);

    /// <summary>All the migration has sent: <see cref="BytesWritten"/> and <see cref="BytesSentElsewhere"/>.</summary>
    public long BytesSentInAll => BytesWritten + BytesSentElsewhere;

    /// <summary>
    /// Records <paramref name="error"/> as the stream's error if none is recorded yet (later
    /// ones are ignored). Every later operation then throws without touching the transport.
    /// </summary>
    public void SetError(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (Interlocked.CompareExchange(ref _error, error, null) is null)
        {
            _fastLimit = -1;
        }
    }

    /// <summary>Writes one byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutByte(byte value)
    {
        int pos = _used;
        if (pos < _fastLimit)
        {
            Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), pos) = value;
            _used = pos + 1;
            return;
        }

        PutByteSlow(value);
    }

    /// <summary>Writes a 16-bit value, big-endian.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutBe16(ushort value)
    {
        int pos = _used;
        if (pos + sizeof(ushort) <= _fastLimit)
        {
            WriteRaw(pos, BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value);
            _used = pos + sizeof(ushort);
            return;
        }

        PutBe16Slow(value);
    }

    /// <summary>Writes a 32-bit value, big-endian.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutBe32(uint value)
    {
        int pos = _used;
        if (pos + sizeof(uint) <= _fastLimit)
        {
            WriteRaw(pos, BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value);
            _used = pos + sizeof(uint);
            return;
        }

        PutBe32Slow(value);
    }

    /// <summary>Writes a 64-bit value, big-endian.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutBe64(ulong value)
    {
        int pos = _used;
        if (pos + sizeof(ulong) <= _fastLimit)
        {
            WriteRaw(pos, BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value);
            _used = pos + sizeof(ulong);
            return;
        }

        PutBe64Slow(value);
    }

    /// <summary>Writes a signed 16-bit value, big-endian two's complement.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutSignedBe16(short value) => PutBe16((ushort)value);

    /// <summary>Writes a signed 32-bit value, big-endian two's complement.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutSignedBe32(int value) => PutBe32((uint)value);

    /// <summary>Writes a signed 64-bit value, big-endian two's complement.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutSignedBe64(long value) => PutBe64((ulong)value);

    /// <summary>
    /// Writes a counted string: one length byte, then the UTF-8 bytes of
    /// <paramref name="value"/> (no terminator).
    /// </summary>
    /// <exception cref="ArgumentException">The encoded string is longer than 255 bytes.</exception>
    public void PutCountedString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length > MaxCountedStringLength)
        {
            throw CountedStringTooLong(value.Length, nameof(value));
        }

        // At most 3 UTF-8 bytes per UTF-16 unit.
        Span<byte> encoded = stackalloc byte[MaxCountedStringLength * 3];
        int length = Encoding.UTF8.GetBytes(value, encoded);
        if (length > MaxCountedStringLength)
        {
            throw CountedStringTooLong(length, nameof(value));
        }

        PutByte((byte)length);
        PutBuffer(encoded[..length]);
    }

    /// <summary>Writes a counted string from raw bytes: one length byte, then the bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="value"/> is longer than 255 bytes.</exception>
    public void PutCountedString(ReadOnlySpan<byte> value)
    {
        if (value.Length > MaxCountedStringLength)
        {
            throw CountedStringTooLong(value.Length, nameof(value));
        }

        PutByte((byte)value.Length);
        PutBuffer(value);
    }

    /// <summary>
    /// Writes <paramref name="data"/> as it is. Buffers of <see cref="DirectWriteThreshold"/>
    /// bytes or more go straight to the transport after the pending bytes are flushed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutBuffer(ReadOnlySpan<byte> data)
    {
        int pos = _used;
        if (data.Length < _directThreshold && data.Length <= _fastLimit - pos)
        {
            data.CopyTo(MemoryMarshal.CreateSpan(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), pos), data.Length));
            _used = pos + data.Length;
            return;
        }

        PutBufferSlow(data);
    }

    /// <summary>
    /// Puts <paramref name="data"/> into the stream without copying it when the transport is a
    /// socket: it is queued by address and read when the batch is sent (at the next flush, when
    /// the batch is full, or when the buffer fills). The bytes must be in memory that does not
    /// move and stays mapped until then (guest RAM); a change made before the send is what
    /// goes out. Elsewhere it is <see cref="PutBuffer"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public unsafe void PutBufferByReference(ReadOnlySpan<byte> data)
    {
        if (_socket is null || data.IsEmpty)
        {
            PutBuffer(data);
            return;
        }

        if (_fastLimit < 0)
        {
            ThrowIfUnusable();
        }

        if (_vectorCount + 3 > _vectors.Length) // a stretch, this buffer, and the closing stretch
        {
            Drain();
        }

        CloseBufferStretch();
        fixed (byte* start = data)
        {
            _vectors[_vectorCount++] = new MiniVmm.Native.IoVector(start, (nuint)data.Length);
        }

        _pendingExternal += data.Length;
    }

    /// <summary>Delivers every buffered byte to the transport and flushes the transport.</summary>
    public void Flush()
    {
        ThrowIfUnusable();
        Drain();
        try
        {
            _transport.Flush();
        }
        catch (Exception ex)
        {
            throw Fail(ex, "transport flush failed", _delivered);
        }
    }

    /// <summary>
    /// Flushes (unless an error is recorded) and disposes the transport unless the writer was
    /// created with leaveOpen. A flush failure is recorded and rethrown after the transport is
    /// released. Calling it again does nothing.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        try
        {
            if (!HasError)
            {
                Flush();
            }
        }
        finally
        {
            _disposed = true;
            _fastLimit = -1;
            if (!_leaveOpen)
            {
                _transport.Dispose();
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteRaw<T>(int pos, T value)
        where T : unmanaged =>
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), pos), value);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void PutByteSlow(byte value)
    {
        MakeRoom(1);
        PutByte(value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void PutBe16Slow(ushort value)
    {
        MakeRoom(sizeof(ushort));
        PutBe16(value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void PutBe32Slow(uint value)
    {
        MakeRoom(sizeof(uint));
        PutBe32(value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void PutBe64Slow(ulong value)
    {
        MakeRoom(sizeof(ulong));
        PutBe64(value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void PutBufferSlow(ReadOnlySpan<byte> data)
    {
        ThrowIfUnusable();
        if (data.Length >= _directThreshold)
        {
            Drain();
            try
            {
                _transport.Write(data);
            }
            catch (Exception ex)
            {
                throw Fail(ex, "transport write failed", _delivered);
            }

            _delivered += data.Length;
            return;
        }

        // Shorter than the threshold but longer than the free space: top up, drain, copy the rest.
        int free = _buffer.Length - _used;
        data[..free].CopyTo(_buffer.AsSpan(_used));
        _used += free;
        Drain();
        data[free..].CopyTo(_buffer);
        _used = data.Length - free;
    }

    // Ensures the writer is usable and the buffer has `size` free bytes.
    private void MakeRoom(int size)
    {
        ThrowIfUnusable();
        if (_buffer.Length - _used < size)
        {
            Drain();
        }
    }

    // Adds the buffered bytes since the last external buffer to the gathered send.
    private unsafe void CloseBufferStretch()
    {
        if (_used > _bufferMark)
        {
            byte* buffer = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffer));
            _vectors[_vectorCount++] = new MiniVmm.Native.IoVector(buffer + _bufferMark, (nuint)(_used - _bufferMark));
            _bufferMark = _used;
        }
    }

    // Sends the gathered buffers: the buffer stretches and the external buffers between them.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SendGathered()
    {
        if (HasError)
        {
            ThrowIfUnusable();
        }

        CloseBufferStretch();
        long total = _used + _pendingExternal;
        try
        {
            MiniVmm.Native.GatheredSend.SendAll(_socket!, _vectors.AsSpan(0, _vectorCount));
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            throw Fail(ex, "transport write failed", _delivered);
        }
        finally
        {
            _vectorCount = 0;
        }

        _delivered += total;
        _used = 0;
        _bufferMark = 0;
        _pendingExternal = 0;
    }

    // Writes the buffered bytes to the transport (no transport flush).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Drain()
    {
        if (_vectorCount > 0)
        {
            SendGathered();
            return;
        }

        if (_used == 0)
        {
            return;
        }

        if (HasError)
        {
            ThrowIfUnusable();
        }

        try
        {
            _transport.Write(_buffer, 0, _used);
        }
        catch (Exception ex)
        {
            throw Fail(ex, "transport write failed", _delivered);
        }

        _delivered += _used;
        _used = 0;
    }

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Exception? error = Error;
        if (error is not null)
        {
            throw new MigrationStreamException($"migration stream has already failed: {error.Message}", BytesWritten, error);
        }
    }

    // Records a transport failure as the sticky error and builds the exception to throw.
    private MigrationStreamException Fail(Exception cause, string what, long offset)
    {
        SetError(cause);
        return new MigrationStreamException($"{what}: {cause.Message}", offset, cause);
    }

    private static ArgumentException CountedStringTooLong(int length, string parameter) =>
        new($"a counted string holds at most {MaxCountedStringLength} bytes, got {length}", parameter);
}
