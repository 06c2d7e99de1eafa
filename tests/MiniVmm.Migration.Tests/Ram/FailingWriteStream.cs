namespace MiniVmm.Migration.Tests.Ram;

/// <summary>A write-only transport that keeps what it gets and throws once it has accepted a given number of bytes.</summary>
internal sealed class FailingWriteStream : System.IO.Stream
{
    private readonly MemoryStream _data = new();

    public long FailAfterBytes { get; set; } = long.MaxValue;

    public byte[] Written => _data.ToArray();

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => _data.Length;

    public override long Position { get => _data.Length; set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_data.Length + buffer.Length > FailAfterBytes)
        {
            throw new IOException($"transport broke after {_data.Length} bytes");
        }

        _data.Write(buffer);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
