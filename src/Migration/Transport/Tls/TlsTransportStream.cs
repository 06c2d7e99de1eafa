using System.Net.Security;

namespace MiniVmm.Migration.Transport.Tls;

/// <summary>
/// A migration connection after its TLS handshake: reads and writes go through the
/// <see cref="SslStream"/> (one reader and one writer may run at once, as the return path
/// needs), <see cref="Inner"/> is the connection under it, for shutting it down.
/// </summary>
public sealed class TlsTransportStream : System.IO.Stream
{
    private readonly SslStream _tls;

    internal TlsTransportStream(SslStream tls, System.IO.Stream inner)
    {
        _tls = tls;
        Inner = inner;
    }

    /// <summary>The connection the TLS records travel on.</summary>
    public System.IO.Stream Inner { get; }

    /// <summary>The negotiated protocol (TLS 1.2, 1.3).</summary>
    public System.Security.Authentication.SslProtocols Protocol => _tls.SslProtocol;

    /// <summary>The negotiated cipher suite.</summary>
    public TlsCipherSuite CipherSuite => _tls.NegotiatedCipherSuite;

    /// <inheritdoc />
    public override bool CanRead => _tls.CanRead;

    /// <inheritdoc />
    public override bool CanWrite => _tls.CanWrite;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => _tls.Read(buffer, offset, count);

    /// <inheritdoc />
    public override int Read(Span<byte> buffer) => _tls.Read(buffer);

    /// <inheritdoc />
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _tls.ReadAsync(buffer, cancellationToken);

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => _tls.Write(buffer, offset, count);

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer) => _tls.Write(buffer);

    /// <inheritdoc />
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _tls.WriteAsync(buffer, cancellationToken);

    /// <inheritdoc />
    public override void Flush() => _tls.Flush();

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _tls.Dispose();
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
