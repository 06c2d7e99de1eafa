namespace MiniVmm.Migration.Tests.Stream;

/// <summary>A read-only stream over fixed bytes that returns only 1–3 bytes per Read call.</summary>
internal sealed class TrickleStream : System.IO.Stream
{
    private readonly byte[] _data;
    private readonly Random _random;
    private int _position;

    public TrickleStream(byte[] data, int seed = 1)
    {
        _data = data;
        _random = new Random(seed);
    }

    public int ReadCalls { get; private set; }

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
        ReadCalls++;
        int count = Math.Min(Math.Min(buffer.Length, _random.Next(1, 4)), _data.Length - _position);
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
}
