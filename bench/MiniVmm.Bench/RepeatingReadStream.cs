namespace MiniVmm.Bench;

/// <summary>An endless read-only stream that serves one pattern over and over (a copy per Read, like a socket).</summary>
public sealed class RepeatingReadStream(byte[] pattern) : Stream
{
    private int _position;

    /// <inheritdoc />
    public override bool CanRead => true;

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

    /// <summary>Starts again at the beginning of the pattern.</summary>
    public void Rewind() => _position = 0;

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override int Read(Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int count = Math.Min(buffer.Length - done, pattern.Length - _position);
            pattern.AsSpan(_position, count).CopyTo(buffer[done..]);
            done += count;
            _position = (_position + count) % pattern.Length;
        }

        return done;
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
}
