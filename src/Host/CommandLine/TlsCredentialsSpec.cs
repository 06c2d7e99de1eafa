using MiniVmm.Migration.Transport.Tls;

namespace MiniVmm.Host.CommandLine;

/// <summary>
/// One <c>-object tls-creds-x509,id=ID,dir=DIR[,endpoint=server|client][,verify-peer=on|off]</c>
/// (or the same properties in QMP <c>object-add</c>), decoded but not yet loaded.
/// </summary>
/// <param name="Id">The object's id (what <c>tls-creds</c> names).</param>
/// <param name="Directory">Where the PEM files are.</param>
/// <param name="Endpoint">Which end of the connection (QEMU's default: client).</param>
/// <param name="VerifyPeer">Whether the peer's certificate is required and checked (QEMU's default: on).</param>
/// <param name="Text">The option as typed, for error messages.</param>
public sealed record TlsCredentialsSpec(string Id, string Directory, TlsEndpoint Endpoint, bool VerifyPeer, string Text)
{
    /// <summary>The QOM type name.</summary>
    public const string QomType = "tls-creds-x509";

    /// <summary>The properties <c>tls-creds-x509</c> takes.</summary>
    public static readonly IReadOnlyList<string> Properties = ["dir", "endpoint", "verify-peer"];
}
