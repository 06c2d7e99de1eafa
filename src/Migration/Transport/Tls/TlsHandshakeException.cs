namespace MiniVmm.Migration.Transport.Tls;

/// <summary>
/// A TLS handshake of a migration connection that failed, with the cause in plain words
/// ("TLS handshake with 127.0.0.1:4444 failed: the server's certificate has expired").
/// </summary>
public sealed class TlsHandshakeException : IOException
{
    /// <summary>Creates the exception.</summary>
    public TlsHandshakeException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
