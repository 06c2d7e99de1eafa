namespace MiniVmm.Migration.Tests.Stream;

/// <summary>
/// A write-only stream that keeps what it is given and the size of every Write call, and can
/// be told to throw on a given call.
/// </summary>
internal sealed class RecordingWriteStream : System.IO.Stream
{
    private readonly MemoryStream _data = new();
    private readonly int _failOnWrite;

    /// <param name="failOnWrite">1-based Write call that throws <see cref="IOException"/>; 0 for never.</param>
    public RecordingWriteStream(int failOnWrite = 0)
    {
        _failOnWrite = failOnWrite;
    }

    public List<int> WriteSizes { get; } = [];

    public int WriteCalls { get; private set; }

    public int FlushCalls { get; private set; }

    public bool IsDisposed { get; private set; }

    public IOException? Thrown { get; private set; }

    public byte[] Written => _data.ToArray();

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => _data.Length;

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        WriteCalls++;
        if (WriteCalls == _failOnWrite)
        {
            Thrown = new IOException($"write {WriteCalls} refused");
            throw Thrown;
        }

        WriteSizes.Add(buffer.Length);
        _data.Write(buffer);
    }

    public override void Flush() => FlushCalls++;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        IsDisposed = true;
        base.Dispose(disposing);
    }
}
