using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// Certificates made in the test with <see cref="CertificateRequest"/>, written as PEM files with
/// QEMU's names (<c>ca-cert.pem</c>, <c>server-cert.pem</c>, <c>server-key.pem</c>,
/// <c>client-cert.pem</c>, <c>client-key.pem</c>), with what GnuTLS's sanity checks in QEMU want:
/// a CA with basic constraints and keyCertSign, leaves with the right key usages and EKUs.
/// </summary>
public static class TestCertificates
{
    /// <summary>A self-signed CA (RSA 2048).</summary>
    public static X509Certificate2 CreateAuthority(string name)
    {
        using RSA key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-60), DateTimeOffset.UtcNow.AddYears(1));
    }

    /// <summary>
    /// A leaf signed by <paramref name="authority"/> for <paramref name="dnsName"/> and 127.0.0.1 (SANs),
    /// usable as server and client; <paramref name="expired"/> makes one that ended yesterday.
    /// </summary>
    public static X509Certificate2 CreateLeaf(X509Certificate2 authority, string commonName, bool expired = false, string dnsName = "localhost", IPAddress? address = null)
    {
        using RSA key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(dnsName);
        san.AddIpAddress(address ?? IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        DateTimeOffset notBefore = expired ? DateTimeOffset.UtcNow.AddDays(-30) : DateTimeOffset.UtcNow.AddDays(-1);
        DateTimeOffset notAfter = expired ? DateTimeOffset.UtcNow.AddDays(-1) : DateTimeOffset.UtcNow.AddDays(30);
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using X509Certificate2 signed = request.Create(authority, notBefore, notAfter, serial);
        return signed.CopyWithPrivateKey(key);
    }

    /// <summary>Writes a server directory: <c>ca-cert.pem</c>, <c>server-cert.pem</c>, <c>server-key.pem</c>.</summary>
    public static string WriteServer(string directory, X509Certificate2 authority, X509Certificate2 server)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "ca-cert.pem"), authority.ExportCertificatePem());
        WritePair(directory, "server", server);
        return directory;
    }

    /// <summary>Writes a client directory: <c>ca-cert.pem</c> and, when given, <c>client-cert.pem</c> and <c>client-key.pem</c>.</summary>
    public static string WriteClient(string directory, X509Certificate2 authority, X509Certificate2? client)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "ca-cert.pem"), authority.ExportCertificatePem());
        if (client is not null)
        {
            WritePair(directory, "client", client);
        }

        return directory;
    }

    private static void WritePair(string directory, string side, X509Certificate2 certificate)
    {
        File.WriteAllText(Path.Combine(directory, $"{side}-cert.pem"), certificate.ExportCertificatePem());
        using RSA key = certificate.GetRSAPrivateKey() ?? throw new InvalidOperationException("no private key");
        File.WriteAllText(Path.Combine(directory, $"{side}-key.pem"), key.ExportPkcs8PrivateKeyPem());
    }
}
