namespace MiniVmm.Fuzz.Tests.Seeds;

/// <summary>
/// A migration transport in memory: what is written is kept (<see cref="Written"/>), and reads,
/// when <paramref name="replies"/> is given, return those bytes and then the end of the stream —
/// the destination's side of a return path, scripted.
/// </summary>
internal sealed class ScriptedTransport(byte[]? replies) : Stream
{
    private readonly MemoryStream _written = new();
    private readonly MemoryStream? _replies = replies is null ? null : new MemoryStream(replies, writable: false);

    public byte[] Written
    {
        get
        {
            lock (_written)
            {
                return _written.ToArray();
            }
        }
    }

    public override bool CanRead => _replies is not null;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        lock (_written)
        {
            _written.Write(buffer);
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer) =>
        _replies?.Read(buffer) ?? throw new NotSupportedException("this transport is write-only");

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
