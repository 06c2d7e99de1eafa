using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace MiniVmm.Migration.Transport.Tls;

/// <summary>
/// TLS on a migration connection, as QEMU's <c>migration/tls.c</c> does it with
/// <c>tls-creds-x509</c>: the source is the TLS client and checks the destination's certificate
/// against <c>ca-cert.pem</c> and the host name; the destination is the TLS server and, with
/// <c>verify-peer=on</c>, requires a client certificate signed by <c>ca-cert.pem</c>. Failures
/// come out as <see cref="TlsHandshakeException"/> with the cause in plain words.
/// </summary>
public static class MigrationTls
{
    /// <summary>
    /// The handshake as the source: <paramref name="hostname"/> is what the destination's
    /// certificate must name (a DNS name or an IP address); <paramref name="peer"/> names the
    /// destination in errors.
    /// </summary>
    /// <exception cref="TlsHandshakeException">The handshake failed; the connection is closed.</exception>
    public static TlsTransportStream Client(
        System.IO.Stream connection, TlsCredentialsX509 credentials, string hostname, string peer, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(credentials);
        credentials.CheckEndpoint(TlsEndpoint.Client);
        string? reason = null;
        bool certificateRequested = false;
        var tls = new SslStream(connection, leaveInnerStreamOpen: true);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = hostname,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                reason = CheckServer(credentials, certificate, errors, hostname);
                return reason is null;
            },
            LocalCertificateSelectionCallback = (_, _, _, _, acceptableIssuers) =>
            {
                // Called when the server asks for a certificate (and, on some platforms, once before).
                certificateRequested |= acceptableIssuers.Length > 0;
                return credentials.Certificate!;
            },
        };

        try
        {
            tls.AuthenticateAsClientAsync(options, cancel).GetAwaiter().GetResult();
        }
        catch (Exception error) when (error is AuthenticationException or IOException or OperationCanceledException)
        {
            tls.Dispose();
            connection.Dispose();
            throw new TlsHandshakeException(
                $"TLS handshake with {peer} failed: {reason ?? DescribeRemoteFailure(error, credentials, certificateRequested)}", error);
        }

        if (certificateRequested && credentials.Certificate is null)
        {
            // Under TLS 1.3 the server checks the client's certificate after the client has
            // finished: fail here, with the reason, rather than on the first write.
            tls.Dispose();
            connection.Dispose();
            throw new TlsHandshakeException(
                $"TLS handshake with {peer} failed: the server requires a client certificate (verify-peer=on) and {credentials.Directory} has no {TlsCredentialsX509.ClientCertFile}");
        }

        string? refusalHint = credentials.Certificate is null
            ? null
            : $"TLS session with {peer} ended before the destination sent a byte: the destination probably refused this side's certificate "
                + $"({TlsCredentialsX509.ClientCertFile} in {credentials.Directory}, issuer '{credentials.Certificate.Issuer}'); its log names the reason";
        return new TlsTransportStream(tls, connection, refusalHint);
    }

    /// <summary>
    /// The handshake as the destination; <paramref name="peer"/> names the source (or the
    /// listening address) in errors.
    /// </summary>
    /// <param name="connection">The accepted connection.</param>
    /// <param name="credentials">Server credentials.</param>
    /// <param name="peer">Names the source in errors.</param>
    /// <param name="sourceReads">
    /// Whether the source reads this connection (the return path). If not, TLS 1.2 is used: a TLS
    /// 1.3 server (OpenSSL) sends session tickets after the handshake that a source which never
    /// reads leaves unread, and its close then becomes a reset that drops the stream's tail.
    /// </param>
    /// <param name="cancel">Aborts the handshake.</param>
    /// <exception cref="TlsHandshakeException">The handshake failed; the connection is closed.</exception>
    public static TlsTransportStream Server(
        System.IO.Stream connection, TlsCredentialsX509 credentials, string peer, bool sourceReads, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(credentials);
        credentials.CheckEndpoint(TlsEndpoint.Server);
        string? reason = null;
        var tls = new SslStream(connection, leaveInnerStreamOpen: true);
        var options = new SslServerAuthenticationOptions
        {
            // The CA names go into the certificate request, as GnuTLS does, so a client knows what is wanted.
            ServerCertificateContext = SslStreamCertificateContext.Create(
                credentials.Certificate!, null, offline: true,
                credentials.VerifyPeer ? SslCertificateTrust.CreateForX509Collection(credentials.Authorities, sendTrustInHandshake: true) : null),
            ClientCertificateRequired = credentials.VerifyPeer,

            AllowTlsResume = false,
            EnabledSslProtocols = sourceReads ? SslProtocols.None : SslProtocols.Tls12,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                reason = credentials.VerifyPeer ? CheckClient(credentials, certificate) : null;
                return reason is null;
            },
        };
        try
        {
            tls.AuthenticateAsServerAsync(options, cancel).GetAwaiter().GetResult();
        }
        catch (Exception error) when (error is AuthenticationException or IOException or OperationCanceledException)
        {
            tls.Dispose();
            connection.Dispose();
            throw new TlsHandshakeException(
                $"TLS handshake with {peer} failed: {reason ?? DescribeRemoteFailure(error, credentials, false)}", error);
        }

        return new TlsTransportStream(tls, connection);
    }

    private static string? CheckServer(
        TlsCredentialsX509 credentials, X509Certificate? presented, SslPolicyErrors errors, string hostname)
    {
        if (presented is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return "the server presented no certificate";
        }

        using X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        if (CheckChain(credentials, certificate, "server") is { } chainProblem)
        {
            return chainProblem;
        }

        return certificate.MatchesHostname(hostname, allowWildcards: true, allowCommonName: true)
            ? null
            : $"the server's certificate does not name '{hostname}' (subject '{certificate.Subject}'; set tls-hostname to the name it carries)";
    }

    private static string? CheckClient(TlsCredentialsX509 credentials, X509Certificate? presented)
    {
        if (presented is null)
        {
            return $"the client presented no certificate, and verify-peer=on (tls-creds '{credentials.Id}') requires one signed by {TlsCredentialsX509.CaCertFile} in {credentials.Directory}";
        }

        using X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        return CheckChain(credentials, certificate, "client");
    }

    /// <summary>Whether <paramref name="certificate"/> chains to <c>ca-cert.pem</c> and is valid now; the problem in words otherwise.</summary>
    private static string? CheckChain(TlsCredentialsX509 credentials, X509Certificate2 certificate, string side)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(credentials.Authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        if (chain.Build(certificate))
        {
            return null;
        }

        X509ChainStatusFlags flags = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (all, s) => all | s.Status);
        string ca = $"{TlsCredentialsX509.CaCertFile} in {credentials.Directory}";
        if (flags.HasFlag(X509ChainStatusFlags.UntrustedRoot) || flags.HasFlag(X509ChainStatusFlags.PartialChain))
        {
            return $"the {side}'s certificate (issuer '{certificate.Issuer}') is not signed by {ca}";
        }

        if (flags.HasFlag(X509ChainStatusFlags.NotTimeValid))
        {
            DateTime now = DateTime.Now;
            return certificate.NotAfter < now
                ? $"the {side}'s certificate '{certificate.Subject}' expired on {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC"
                : $"the {side}'s certificate '{certificate.Subject}' is not valid before {certificate.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC";
        }

        return $"the {side}'s certificate '{certificate.Subject}' does not verify against {ca}: "
            + string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Distinct());
    }

    /// <summary>When the peer refused us (a TLS alert) or the connection broke, the best words for it.</summary>
    private static string DescribeRemoteFailure(Exception error, TlsCredentialsX509 credentials, bool certificateRequested)
    {
        string text = string.Join(": ", Chain(error).Select(e => e.Message).Distinct());
        string lower = text.ToLowerInvariant();
        if (error is OperationCanceledException)
        {
            return "cancelled";
        }

        if (lower.Contains("certificate required", StringComparison.Ordinal)
            || (certificateRequested && credentials.Certificate is null))
        {
            return $"the peer requires a client certificate (verify-peer=on) and {credentials.Directory} has no {TlsCredentialsX509.ClientCertFile} ({text})";
        }

        if (lower.Contains("unknown ca", StringComparison.Ordinal) || lower.Contains("bad certificate", StringComparison.Ordinal)
            || lower.Contains("certificate expired", StringComparison.Ordinal) || lower.Contains("decrypt error", StringComparison.Ordinal))
        {
            return $"the peer refused this side's certificate from {credentials.Directory} ({text})";
        }

        if (lower.Contains("wrong version number", StringComparison.Ordinal) || lower.Contains("unexpected eof", StringComparison.Ordinal)
            || lower.Contains("0 bytes", StringComparison.Ordinal) || lower.Contains("unexpected message", StringComparison.Ordinal))
        {
            return $"the peer closed the connection or does not speak TLS (is tls-creds set on both sides?) ({text})";
        }

        return text;
    }

    private static IEnumerable<Exception> Chain(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }
}
