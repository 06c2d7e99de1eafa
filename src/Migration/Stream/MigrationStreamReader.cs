using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace MiniVmm.Migration.Stream;

/// <summary>
/// The receiving side of a migration byte stream: buffered big-endian reads, counted strings,
/// look-ahead (<see cref="Peek"/>) and direct large reads over any <see cref="System.IO.Stream"/>
/// transport. Every failure is a <see cref="MigrationStreamException"/> carrying the stream
/// offset, and the first failure is sticky.
/// </summary>
/// <remarks>Not thread-safe: one thread reads. <see cref="SetError"/> may come from another thread.</remarks>
public sealed class MigrationStreamReader : IDisposable
{
    /// <summary>Internal buffer size used when none is given: 256 KiB.</summary>
    public const int DefaultBufferSize = 256 * 1024;

    /// <summary>Smallest accepted internal buffer size (and so the smallest <see cref="MaxPeekLength"/>).</summary>
    public const int MinBufferSize = 4096;

    /// <summary>
    /// Reads of at least this many bytes (or the buffer size, if smaller) go from the
    /// transport straight into the caller's memory once the internal buffer is empty.
    /// </summary>
    public const int DirectReadThreshold = 64 * 1024;

    /// <summary><see cref="ReadBytes"/> never allocates more than this ahead of the data that has arrived.</summary>
    public const int ReadBytesChunk = 64 * 1024;

    private readonly System.IO.Stream _transport;
    private readonly bool _leaveOpen;
    private readonly byte[] _buffer;
    private readonly int _directThreshold;

    // Unread bytes are _buffer[_pos.._end). Fast paths also require _error to be null; both
    // are 0 once the reader is disposed, so fast paths fall through to the state checks.
    private int _pos;
    private int _end;

    // Stream offset of _buffer[0].
    private long _bufferOffset;

    private bool _transportEnded;
    private Exception? _error;
    private bool _disposed;

    /// <summary>Creates a reader over <paramref name="transport"/>.</summary>
    /// <param name="transport">Where the bytes come from; must be readable.</param>
    /// <param name="leaveOpen">When false, disposing the reader disposes the transport.</param>
    /// <param name="bufferSize">Internal buffer size in bytes (at least <see cref="MinBufferSize"/>).</param>
    public MigrationStreamReader(System.IO.Stream transport, bool leaveOpen = false, int bufferSize = DefaultBufferSize)
    {
        ArgumentNullException.ThrowIfNull(transport);
        if (!transport.CanRead)
        {
            throw new ArgumentException("the transport is not readable", nameof(transport));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, MinBufferSize);
        _transport = transport;
        _leaveOpen = leaveOpen;
        _buffer = GC.AllocateUninitializedArray<byte>(bufferSize);
        _directThreshold = Math.Min(bufferSize, DirectReadThreshold);
    }

    /// <summary>Bytes consumed so far, counted from the start of the stream.</summary>
    public long Offset => _bufferOffset + _pos;

    /// <summary>The largest count <see cref="Peek"/> accepts (the internal buffer size).</summary>
    public int MaxPeekLength => _buffer.Length;

    /// <summary>The first error recorded, or null.</summary>
    public Exception? Error => Volatile.Read(ref _error);

    /// <summary>True once an error has been recorded.</summary>
    public bool HasError => Volatile.Read(ref _error) is not null;

    /// <summary>
    /// True when the transport has ended and every byte has been consumed; waits for a byte
    /// or the end of the transport when nothing is buffered.
    /// </summary>
    public bool IsAtEnd => PeekByte() < 0;

    /// <summary>
    /// Records <paramref name="error"/> as the stream's error if none is recorded yet (later
    /// ones are ignored). Every later read then throws without touching the transport. When
    /// called from another thread, a read loop running at that moment sees the error at its
    /// next call that is not served from the buffer at the latest.
    /// </summary>
    public void SetError(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        Interlocked.CompareExchange(ref _error, error, null);
    }

    /// <summary>Reads one byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte GetByte()
    {
        int pos = _pos;
        if (pos < _end && _error is null)
        {
            _pos = pos + 1;
            return Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), pos);
        }

        return GetByteSlow();
    }

    /// <summary>Reads a big-endian 16-bit value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ushort GetBe16()
    {
        int pos = _pos;
        if (_end - pos >= sizeof(ushort) && _error is null)
        {
            _pos = pos + sizeof(ushort);
            ushort raw = ReadRaw<ushort>(pos);
            return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(raw) : raw;
        }

        return BinaryPrimitives.ReadUInt16BigEndian(Take(sizeof(ushort), "be16"));
    }

    /// <summary>Reads a big-endian 32-bit value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint GetBe32()
    {
        int pos = _pos;
        if (_end - pos >= sizeof(uint) && _error is null)
        {
            _pos = pos + sizeof(uint);
            uint raw = ReadRaw<uint>(pos);
            return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(raw) : raw;
        }

        return BinaryPrimitives.ReadUInt32BigEndian(Take(sizeof(uint), "be32"));
    }

    /// <summary>Reads a big-endian 64-bit value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public ulong GetBe64()
    {
        int pos = _pos;
        if (_end - pos >= sizeof(ulong) && _error is null)
        {
            _pos = pos + sizeof(ulong);
            ulong raw = ReadRaw<ulong>(pos);
            return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(raw) : raw;
        }

        return BinaryPrimitives.ReadUInt64BigEndian(Take(sizeof(ulong), "be64"));
    }

    /// <summary>Reads a big-endian two's-complement 16-bit value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public short GetSignedBe16() => (short)GetBe16();

    /// <summary>Reads a big-endian two's-complement 32-bit value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int GetSignedBe32() => (int)GetBe32();

    /// <summary>Reads a big-endian two's-complement 64-bit value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long GetSignedBe64() => (long)GetBe64();

    /// <summary>Reads a counted string (one length byte, then that many bytes) decoded as UTF-8.</summary>
    public string GetCountedString() => Encoding.UTF8.GetString(GetCountedBytes());

    /// <summary>
    /// Reads a counted string and returns its raw bytes without allocating. The span points
    /// into the internal buffer and is valid only until the next call on this reader.
    /// </summary>
    public ReadOnlySpan<byte> GetCountedBytes()
    {
        long start = Offset;
        int length = GetByte();
        int available = EnsureBuffered(length);
        if (available < length)
        {
            throw Truncated("counted string", start, 1 + length, 1 + available);
        }

        ReadOnlySpan<byte> bytes = _buffer.AsSpan(_pos, length);
        _pos += length;
        return bytes;
    }

    /// <summary>
    /// Fills <paramref name="destination"/> completely. Large reads go straight from the
    /// transport into <paramref name="destination"/> once the buffered bytes are used up.
    /// </summary>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="what">What is being read, for error messages.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void ReadExactly(Span<byte> destination, string what = "buffer")
    {
        int pos = _pos;
        if (_end - pos >= destination.Length && _error is null)
        {
            MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), pos), destination.Length)
                .CopyTo(destination);
            _pos = pos + destination.Length;
            return;
        }

        ReadExactlySlow(destination, what);
    }

    /// <summary>Consumes and discards <paramref name="count"/> bytes.</summary>
    public void Skip(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ThrowIfUnusable();
        long start = Offset;
        long remaining = count;
        while (remaining > 0)
        {
            int available = EnsureBuffered((int)Math.Min(remaining, _buffer.Length));
            if (available == 0)
            {
                throw Truncated("skipped bytes", start, count, count - remaining);
            }

            int step = (int)Math.Min(remaining, available);
            _pos += step;
            remaining -= step;
        }
    }

    /// <summary>
    /// Returns the next <paramref name="count"/> bytes without consuming them; fewer only when
    /// the transport ends first. The span points into the internal buffer and is valid only
    /// until the next call on this reader.
    /// </summary>
    /// <param name="count">0 to <see cref="MaxPeekLength"/>.</param>
    public ReadOnlySpan<byte> Peek(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _buffer.Length);
        int available = _end - _pos >= count && _error is null ? count : EnsureBuffered(count);
        return _buffer.AsSpan(_pos, Math.Min(count, available));
    }

    /// <summary>Returns the next byte without consuming it, or −1 at the end of the stream.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int PeekByte()
    {
        int pos = _pos;
        if (pos < _end && _error is null)
        {
            return Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), pos);
        }

        return EnsureBuffered(1) == 0 ? -1 : _buffer[_pos];
    }

    /// <summary>
    /// Reads <paramref name="length"/> bytes into a new array without trusting the length:
    /// memory grows in chunks of at most <see cref="ReadBytesChunk"/> bytes as data arrives, so
    /// a huge length on a short stream ends in <see cref="MigrationStreamTruncatedException"/>.
    /// </summary>
    /// <param name="length">Byte count taken from the stream.</param>
    /// <param name="what">What is being read, for error messages.</param>
    /// <param name="maxLength">Lengths above this fail at once, before anything is read.</param>
    public byte[] ReadBytes(long length, string what, long maxLength = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(what);
        ThrowIfUnusable();
        long start = Offset;
        if (length < 0)
        {
            throw FailWith(new MigrationStreamException($"invalid length {length} for {what}", start));
        }

        if (length > maxLength)
        {
            throw FailWith(new MigrationStreamException(
                $"length {length} of {what} exceeds the maximum of {maxLength} bytes", start));
        }

        if (length <= ReadBytesChunk)
        {
            byte[] small = GC.AllocateUninitializedArray<byte>((int)length);
            ReadExactly(small, what);
            return small;
        }

        byte[] result = GC.AllocateUninitializedArray<byte>(ReadBytesChunk);
        long filled = 0;
        while (filled < length)
        {
            if (filled == result.Length)
            {
                long grown = Math.Min(length, Math.Max(filled * 2, filled + ReadBytesChunk));
                if (grown > Array.MaxLength)
                {
                    throw FailWith(new MigrationStreamException(
                        $"length {length} of {what} is larger than an array can hold", start));
                }

                Array.Resize(ref result, (int)grown);
            }

            int chunk = (int)Math.Min(result.Length - filled, ReadBytesChunk);
            int got = ReadSome(result.AsSpan((int)filled, chunk));
            if (got == 0)
            {
                throw Truncated(what, start, length, filled);
            }

            filled += got;
        }

        return result;
    }

    /// <summary>Disposes the transport unless the reader was created with leaveOpen. Calling it again does nothing.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        DropBuffered();
        if (!_leaveOpen)
        {
            _transport.Dispose();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private T ReadRaw<T>(int pos)
        where T : unmanaged =>
        Unsafe.ReadUnaligned<T>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), pos));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private byte GetByteSlow() => Take(1, "u8")[0];

    // Consumes exactly `count` bytes (count <= buffer size) and returns them from the buffer.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ReadOnlySpan<byte> Take(int count, string what)
    {
        long start = Offset;
        int available = EnsureBuffered(count);
        if (available < count)
        {
            throw Truncated(what, start, count, available);
        }

        ReadOnlySpan<byte> bytes = _buffer.AsSpan(_pos, count);
        _pos += count;
        return bytes;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void ReadExactlySlow(Span<byte> destination, string what)
    {
        ThrowIfUnusable();
        long start = Offset;
        int done = 0;
        while (done < destination.Length)
        {
            int got = ReadSome(destination[done..]);
            if (got == 0)
            {
                throw Truncated(what, start, destination.Length, done);
            }

            done += got;
        }
    }

    // Copies what is buffered into `destination`, or, with nothing buffered, does one
    // transport read: straight into `destination` when it is large, through the buffer
    // otherwise. Returns 0 only at the end of the transport.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int ReadSome(Span<byte> destination)
    {
        ThrowIfUnusable();
        if (_pos == _end)
        {
            if (destination.Length >= _directThreshold)
            {
                DropBuffered();
                int direct = ReadTransport(destination);
                _bufferOffset += direct;
                return direct;
            }

            if (EnsureBuffered(1) == 0)
            {
                return 0;
            }
        }

        int count = Math.Min(destination.Length, _end - _pos);
        _buffer.AsSpan(_pos, count).CopyTo(destination);
        _pos += count;
        return count;
    }

    // Makes at least `count` bytes (count <= buffer size) available from _pos unless the
    // transport ends first; returns how many are available (possibly more than `count`).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int EnsureBuffered(int count)
    {
        ThrowIfUnusable();
        int available = _end - _pos;
        if (available >= count)
        {
            return available;
        }

        if (available == 0)
        {
            DropBuffered();
        }
        else if (_buffer.Length - _pos < count)
        {
            _buffer.AsSpan(_pos, available).CopyTo(_buffer);
            _bufferOffset += _pos;
            _pos = 0;
            _end = available;
        }

        while (_end - _pos < count)
        {
            // The buffer positions are counted from _bufferOffset, so they stay valid while reading.
            int got = ReadTransport(_buffer, _end, _buffer.Length - _end);
            if (got == 0)
            {
                break;
            }

            _end += got;
        }

        return _end - _pos;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int ReadTransport(byte[] buffer, int start, int count)
    {
        if (_transportEnded)
        {
            return 0;
        }

        int got;
        try
        {
            got = _transport.Read(buffer, start, count);
        }
        catch (Exception ex)
        {
            throw TransportFailed(ex);
        }

        _transportEnded = got == 0;
        return got;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int ReadTransport(Span<byte> destination)
    {
        if (_transportEnded)
        {
            return 0;
        }

        int got;
        try
        {
            got = _transport.Read(destination);
        }
        catch (Exception ex)
        {
            throw TransportFailed(ex);
        }

        _transportEnded = got == 0;
        return got;
    }

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Exception? error = Error;
        if (error is not null)
        {
            throw new MigrationStreamException($"migration stream has already failed: {error.Message}", Offset, error);
        }
    }

    // Forgets buffered bytes (keeping Offset) so every fast path falls through to a state check.
    private void DropBuffered()
    {
        _bufferOffset += _pos;
        _pos = 0;
        _end = 0;
    }

    // Records a transport failure as the sticky error and builds the exception to throw.
    private MigrationStreamException TransportFailed(Exception cause)
    {
        SetError(cause);
        return new MigrationStreamException($"transport read failed: {cause.Message}", Offset, cause);
    }

    private MigrationStreamTruncatedException Truncated(string what, long start, long needed, long got) =>
        FailWith(new MigrationStreamTruncatedException(what, start, needed, got));

    // Records `error` as the sticky error (unless one is already recorded) and returns it.
    private T FailWith<T>(T error)
        where T : Exception
    {
        SetError(error);
        return error;
    }
}
