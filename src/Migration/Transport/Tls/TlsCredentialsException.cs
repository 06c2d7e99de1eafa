namespace MiniVmm.Migration.Transport.Tls;

/// <summary>TLS credentials that cannot be loaded or used (a missing or unreadable file, a wrong endpoint).</summary>
public sealed class TlsCredentialsException : Exception
{
    /// <summary>Creates the exception with QEMU's wording of <paramref name="message"/>.</summary>
    public TlsCredentialsException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the error that caused it.</summary>
    public TlsCredentialsException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
