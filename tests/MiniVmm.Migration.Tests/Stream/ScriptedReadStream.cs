namespace MiniVmm.Migration.Tests.Stream;

/// <summary>
/// A read-only stream over fixed bytes that records the size of every Read request and throws
/// <see cref="IOException"/> once <c>failAfter</c> bytes have been delivered.
/// </summary>
internal sealed class ScriptedReadStream : System.IO.Stream
{
    private readonly byte[] _data;
    private readonly int _failAfter;
    private int _position;

    /// <param name="data">The bytes to deliver.</param>
    /// <param name="failAfter">Throw on the first read after this many bytes; -1 for never.</param>
    public ScriptedReadStream(byte[] data, int failAfter = -1)
    {
        _data = data;
        _failAfter = failAfter;
    }

    public List<int> RequestSizes { get; } = [];

    public IOException? Thrown { get; private set; }

    public bool IsDisposed { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        RequestSizes.Add(buffer.Length);
        if (_failAfter >= 0 && _position >= _failAfter)
        {
            Thrown = new IOException("connection reset");
            throw Thrown;
        }

        int limit = _failAfter >= 0 ? _failAfter : _data.Length;
        int count = Math.Min(buffer.Length, limit - _position);
        _data.AsSpan(_position, count).CopyTo(buffer);
        _position += count;
        return count;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        IsDisposed = true;
        base.Dispose(disposing);
    }
}
