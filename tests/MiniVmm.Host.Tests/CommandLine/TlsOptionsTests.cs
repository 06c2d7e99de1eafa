using System.Text.Json.Nodes;
using MiniVmm.Host.CommandLine;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Transport.Tls;

namespace MiniVmm.Host.Tests.CommandLine;

/// <summary><c>-object tls-creds-x509</c> decoding and the TLS migration parameters, with QEMU's defaults and messages.</summary>
[TestFixture]
public sealed class TlsOptionsTests
{
    [Test]
    public void Object_takes_qemus_defaults_and_spelling()
    {
        TlsCredentialsSpec client = VmOptionsParser.ParseObject("tls-creds-x509,id=tls0,dir=/etc/pki/qemu");
        TlsCredentialsSpec server = VmOptionsParser.ParseObject("tls-creds-x509,id=s,dir=/d,endpoint=server,verify-peer=off");

        Assert.Multiple(() =>
        {
            Assert.That(client, Is.EqualTo(new TlsCredentialsSpec("tls0", "/etc/pki/qemu", TlsEndpoint.Client, true, "tls-creds-x509,id=tls0,dir=/etc/pki/qemu")));
            Assert.That(server.Endpoint, Is.EqualTo(TlsEndpoint.Server));
            Assert.That(server.VerifyPeer, Is.False);
        });
    }

    [TestCase("secret,id=s0,data=x", "invalid object type: secret")]
    [TestCase("tls-creds-x509,dir=/d", "Parameter 'id' is missing")]
    [TestCase("tls-creds-x509,id=t", "Missing 'dir' property value")]
    [TestCase("tls-creds-x509,id=t,dir=/d,endpoint=peer", "Parameter 'endpoint' does not accept value 'peer'")]
    [TestCase("tls-creds-x509,id=t,dir=/d,verify-peer=maybe", "Parameter 'verify-peer' expects 'on' or 'off'")]
    [TestCase("tls-creds-x509,id=t,dir=/d,priority=NORMAL", "Property 'tls-creds-x509.priority' not found")]
    public void Bad_objects_get_one_line_errors(string text, string message)
    {
        var error = Assert.Throws<InvalidCommandLineException>(() => VmOptionsParser.ParseObject(text));
        Assert.That(error!.Message, Does.StartWith($"-object {text}: ").And.Contain(message));
    }

    [Test]
    public void Duplicate_ids_are_refused() =>
        Assert.That(
            () => VmOptionsParser.ParseObjects(["tls-creds-x509,id=t,dir=/a", "tls-creds-x509,id=t,dir=/b"]),
            Throws.TypeOf<InvalidCommandLineException>().With.Message.Contains("attempt to add duplicate property 't'"));

    [Test]
    public void Missing_files_are_named_as_qemu_names_them()
    {
        string directory = Directory.CreateTempSubdirectory("minivmm-tls-").FullName;
        try
        {
            Assert.That(() => TlsCredentialsX509.Load("t", directory, TlsEndpoint.Server),
                Throws.TypeOf<TlsCredentialsException>().With.Message.EqualTo(
                    $"Unable to access credentials {directory}/ca-cert.pem: No such file or directory"));
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }

    [Test]
    public void Tls_parameters_report_empty_strings_like_qemu_and_take_null_as_empty()
    {
        JsonObject defaults = MigrationParameterNames.ToJson(new MigrationParameters());
        MigrationParameters set = MigrationParameterNames.Apply(new MigrationParameters(), new JsonObject { ["tls-creds"] = "tls0", ["tls-hostname"] = "dst" });
        MigrationParameters cleared = MigrationParameterNames.Apply(set, new JsonObject { ["tls-creds"] = null });

        Assert.Multiple(() =>
        {
            Assert.That(defaults["tls-creds"]?.GetValue<string>(), Is.EqualTo(""));
            Assert.That(defaults["tls-hostname"]?.GetValue<string>(), Is.EqualTo(""));
            Assert.That(defaults["tls-authz"]?.GetValue<string>(), Is.EqualTo(""));
            Assert.That(set.UsesTls, Is.True);
            Assert.That(set.TlsHostname, Is.EqualTo("dst"));
            Assert.That(cleared.UsesTls, Is.False);
            Assert.That(() => MigrationParameterNames.Apply(set, new JsonObject { ["tls-authz"] = "authz0" }),
                Throws.ArgumentException.With.Message.Contains("no authorization objects"));
            Assert.That(() => MigrationParameterNames.Apply(set, new JsonObject { ["tls-creds"] = 5 }),
                Throws.ArgumentException.With.Message.EqualTo("Invalid parameter type for 'tls-creds', expected: string"));
        });
    }
}
