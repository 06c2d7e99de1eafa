namespace MiniVmm.Native;

/// <summary>
/// A non-seekable <see cref="Stream"/> over a file descriptor (pipe, memfd, eventfd, socket),
/// reading and writing at the descriptor's current position. On a nonblocking descriptor an
/// operation that would block throws <see cref="NativeCallException"/> with EAGAIN.
/// </summary>
public sealed class FileDescriptorStream : Stream
{
    private readonly FileDescriptorHandle _handle;
    private readonly FileAccess _access;
    private readonly bool _ownsHandle;
    private bool _disposed;

    /// <summary>Wraps <paramref name="handle"/> for the given direction(s).</summary>
    /// <param name="handle">The descriptor.</param>
    /// <param name="access">Which of reading and writing the stream allows.</param>
    /// <param name="ownsHandle">Whether disposing the stream disposes the handle.</param>
    public FileDescriptorStream(FileDescriptorHandle handle, FileAccess access, bool ownsHandle = true)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (access is not (FileAccess.Read or FileAccess.Write or FileAccess.ReadWrite))
        {
            throw new ArgumentOutOfRangeException(nameof(access));
        }
        _handle = handle;
        _access = access;
        _ownsHandle = ownsHandle;
    }

    /// <summary>The descriptor the stream reads or writes.</summary>
    public FileDescriptorHandle Handle => _handle;

    /// <inheritdoc/>
    public override bool CanRead => !_disposed && _access.HasFlag(FileAccess.Read);

    /// <inheritdoc/>
    public override bool CanWrite => !_disposed && _access.HasFlag(FileAccess.Write);

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException("A file descriptor stream has no length.");

    /// <inheritdoc/>
    public override long Position
    {
        get => throw new NotSupportedException("A file descriptor stream is not seekable.");
        set => throw new NotSupportedException("A file descriptor stream is not seekable.");
    }

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        EnsureCan(FileAccess.Read);
        return _handle.Read(buffer);
    }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        return Read(buffer.AsSpan(offset, count));
    }

    /// <inheritdoc/>
    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 0 ? -1 : one[0];
    }

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        EnsureCan(FileAccess.Write);
        _handle.WriteAll(buffer);
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        Write(buffer.AsSpan(offset, count));
    }

    /// <inheritdoc/>
    public override void WriteByte(byte value) => Write([value]);

    /// <summary>Nothing to flush: writes go straight to the descriptor.</summary>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin)
        => throw new NotSupportedException("A file descriptor stream is not seekable.");

    /// <inheritdoc/>
    public override void SetLength(long value)
        => throw new NotSupportedException("A file descriptor stream is not seekable.");

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (!_disposed)
        {
            _disposed = true;
            if (disposing && _ownsHandle)
            {
                _handle.Dispose();
            }
        }
        base.Dispose(disposing);
    }

    private void EnsureCan(FileAccess direction)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_access.HasFlag(direction))
        {
            throw new NotSupportedException($"This stream was opened for {_access} only.");
        }
    }
}
