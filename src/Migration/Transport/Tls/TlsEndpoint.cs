namespace MiniVmm.Migration.Transport.Tls;

/// <summary>Which end of a TLS connection a set of credentials serves (QEMU's <c>endpoint=</c>).</summary>
public enum TlsEndpoint
{
    /// <summary><c>endpoint=client</c>: the migration source, which connects.</summary>
    Client,

    /// <summary><c>endpoint=server</c>: the migration destination, which listens.</summary>
    Server,
}
