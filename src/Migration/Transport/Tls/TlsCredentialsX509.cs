using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MiniVmm.Migration.Transport.Tls;

/// <summary>
/// QEMU's <c>tls-creds-x509</c> object: PEM files with QEMU's names in one directory, loaded when
/// the object is created (as QEMU does). <c>ca-cert.pem</c> is always needed; a server needs
/// <c>server-cert.pem</c> and <c>server-key.pem</c>; a client presents <c>client-cert.pem</c> with
/// <c>client-key.pem</c> when they exist.
/// </summary>
public sealed class TlsCredentialsX509 : IDisposable
{
    /// <summary>The CA file name.</summary>
    public const string CaCertFile = "ca-cert.pem";

    /// <summary>The server certificate file name.</summary>
    public const string ServerCertFile = "server-cert.pem";

    /// <summary>The server key file name.</summary>
    public const string ServerKeyFile = "server-key.pem";

    /// <summary>The client certificate file name.</summary>
    public const string ClientCertFile = "client-cert.pem";

    /// <summary>The client key file name.</summary>
    public const string ClientKeyFile = "client-key.pem";

    private TlsCredentialsX509(
        string id, string directory, TlsEndpoint endpoint, bool verifyPeer,
        X509Certificate2Collection authorities, X509Certificate2? certificate)
    {
        Id = id;
        Directory = directory;
        Endpoint = endpoint;
        VerifyPeer = verifyPeer;
        Authorities = authorities;
        Certificate = certificate;
    }

    /// <summary>The object's id (what <c>tls-creds</c> names).</summary>
    public string Id { get; }

    /// <summary><c>dir=</c>: where the PEM files are.</summary>
    public string Directory { get; }

    /// <summary><c>endpoint=</c>.</summary>
    public TlsEndpoint Endpoint { get; }

    /// <summary><c>verify-peer=</c>: whether the peer's certificate is required and checked against <c>ca-cert.pem</c>.</summary>
    public bool VerifyPeer { get; }

    /// <summary>The certificates of <c>ca-cert.pem</c>, the only roots trusted.</summary>
    public X509Certificate2Collection Authorities { get; }

    /// <summary>This side's certificate with its private key; null for a client without <c>client-cert.pem</c>.</summary>
    public X509Certificate2? Certificate { get; }

    /// <summary>
    /// Loads the files. QEMU's defaults: <c>verify-peer</c> is on unless given.
    /// </summary>
    /// <exception cref="TlsCredentialsException">A required file is missing, or a file is not a usable PEM certificate or key.</exception>
    public static TlsCredentialsX509 Load(string id, string directory, TlsEndpoint endpoint, bool verifyPeer = true)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(directory);
        string ca = Required(directory, CaCertFile);
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(ca);
        }
        catch (CryptographicException error)
        {
            throw new TlsCredentialsException($"Unable to load CA certificate {ca}: {error.Message}", error);
        }

        if (authorities.Count == 0)
        {
            throw new TlsCredentialsException($"Unable to load CA certificate {ca}: no certificate in the file");
        }

        X509Certificate2? certificate;
        if (endpoint == TlsEndpoint.Server)
        {
            certificate = LoadPair(Required(directory, ServerCertFile), Required(directory, ServerKeyFile));
        }
        else
        {
            string cert = Path.Combine(directory, ClientCertFile);
            certificate = File.Exists(cert) ? LoadPair(cert, Required(directory, ClientKeyFile)) : null;
        }

        return new TlsCredentialsX509(id, directory, endpoint, verifyPeer, authorities, certificate);
    }

    /// <summary>Checks that these credentials serve <paramref name="endpoint"/>, with QEMU's message.</summary>
    /// <exception cref="TlsCredentialsException">They serve the other end.</exception>
    public void CheckEndpoint(TlsEndpoint endpoint)
    {
        if (Endpoint != endpoint)
        {
            throw new TlsCredentialsException(
                $"Expected TLS credentials for a {(endpoint == TlsEndpoint.Server ? "server" : "client")} endpoint");
        }
    }

    private static string Required(string directory, string name)
    {
        string path = Path.Combine(directory, name);
        if (!File.Exists(path))
        {
            throw new TlsCredentialsException($"Unable to access credentials {path}: No such file or directory");
        }

        return path;
    }

    private static X509Certificate2 LoadPair(string certificatePath, string keyPath)
    {
        try
        {
            using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);

            // A key from PEM is ephemeral; SslStream wants one it can hand to OpenSSL as a whole
            // certificate with key, which a PKCS#12 round trip gives.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (CryptographicException error)
        {
            throw new TlsCredentialsException($"Unable to load certificate {certificatePath} with key {keyPath}: {error.Message}", error);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Certificate?.Dispose();
        foreach (X509Certificate2 authority in Authorities)
        {
            authority.Dispose();
        }
    }
}
