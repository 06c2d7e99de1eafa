using System.Net.Security;

namespace MiniVmm.Migration.Transport.Tls;

/// <summary>
/// A migration connection after its TLS handshake: reads and writes go through the
/// <see cref="SslStream"/> (one reader and one writer may run at once, as the return path
/// needs), <see cref="Inner"/> is the connection under it, for shutting it down.
/// </summary>
public sealed class TlsTransportStream : System.IO.Stream
{
    /// <summary>How long after the handshake a silent end is blamed on the peer refusing our certificate.</summary>
    private const long RefusalWindowMs = 2000;

    private readonly SslStream _tls;
    private readonly string? _refusalHint;
    private readonly long _established = Environment.TickCount64;
    private long _received;

    internal TlsTransportStream(SslStream tls, System.IO.Stream inner, string? refusalHint = null)
    {
        _tls = tls;
        Inner = inner;
        _refusalHint = refusalHint;
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
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override int Read(Span<byte> buffer)
    {
        int read;
        try
        {
            read = _tls.Read(buffer);
        }
        catch (IOException error) when (RefusedEarly() is { } hint)
        {
            throw new IOException($"{hint} ({error.Message})", error);
        }

        if (read == 0 && buffer.Length > 0 && RefusedEarly() is { } refused)
        {
            throw new IOException(refused);
        }

        Interlocked.Add(ref _received, read);
        return read;
    }

    /// <inheritdoc />
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int read = await _tls.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _received, read);
        return read;
    }

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        try
        {
            _tls.Write(buffer);
        }
        catch (IOException error) when (RefusedEarly() is { } hint)
        {
            throw new IOException($"{hint} ({error.Message})", error);
        }
    }

    /// <summary>
    /// Under TLS 1.3 a server that refuses the client's certificate does so after the client's
    /// handshake has returned: a connection that ends right after it, before the peer sent
    /// anything, is most likely that.
    /// </summary>
    private string? RefusedEarly() =>
        _refusalHint is not null && Interlocked.Read(ref _received) == 0 && Environment.TickCount64 - _established < RefusalWindowMs
            ? _refusalHint
            : null;

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
