using MiniVmm.Runstate;

namespace MiniVmm.Migration.Transport;

/// <summary>
/// Wraps the transport an incoming migration reads from so that a thread holding the big lock
/// lets go of it while it waits for data, and takes it back before parsing what arrived (what
/// QEMU gets from running the loader in a coroutine that yields on a blocking read). QMP stays
/// responsive on the destination while the source is slow or silent.
/// </summary>
public sealed class BigLockYieldingStream(System.IO.Stream inner, BigLock bql, bool leaveOpen = false) : System.IO.Stream
{
    private int _disposed;

    /// <inheritdoc />
    public override bool CanRead => inner.CanRead;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override bool CanWrite => false;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public override int Read(Span<byte> buffer)
    {
        if (!bql.IsHeld)
        {
            return inner.Read(buffer);
        }

        using (bql.ReleaseTemporarily())
        {
            return inner.Read(buffer);
        }
    }

    /// <inheritdoc />
    public override void Flush()
    {
    }

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0 && !leaveOpen)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
