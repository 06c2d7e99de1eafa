using System.Security.Cryptography;
using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Transport.Tls;
using MiniVmm.Migration.Tests.Ram;

namespace MiniVmm.Migration.Tests.Multifd;

/// <summary>Multifd migrations between MiniVmm and a real QEMU 7.2 over tcp, both ways, 2 and 4 channels; RAM compared with pmemsave.</summary>
[TestFixture]
[NonParallelizable]
public sealed class MultifdQemuInteropTests
{
    private const long RamSize = 64L << 20;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private string _directory = null!;

    [SetUp]
    public void CreateScratchDirectory()
    {
        Assert.That(File.Exists(QemuPeer.Binary), Is.True, "QEMU 7.2 is required: apt-get install qemu-system-x86");
        _directory = Directory.CreateTempSubdirectory("minivmm-mfdq-").FullName;
    }

    [TearDown]
    public void DeleteScratchDirectory() => Directory.Delete(_directory, recursive: true);

    [TestCase(2)]
    [TestCase(4)]
    public void Qemu_to_MiniVmm(int channels)
    {
        string data = Path.Combine(_directory, "data.bin");
        byte[] random = new byte[3 << 20];
        new Random(channels).NextBytes(random);
        random.AsSpan(4096 * 9, 4096).Clear();
        File.WriteAllBytes(data, random);
        using var qemu = new QemuPeer(_directory, RamSize, ["-device", $"loader,file={data},addr=0x100000"]);
        qemu.Qmp.Execute("migrate-set-capabilities", new { capabilities = new[] { new { capability = "multifd", state = true } } });
        qemu.Qmp.Execute("migrate-set-parameters", new JsonObject { ["multifd-channels"] = channels, ["max-bandwidth"] = 0 });
        byte[] expected = qemu.PhysicalMemory(0, RamSize);
        using MultifdNode destination = MultifdNode.Destination(RamSize).WithMultifd(channels);
        string uri = $"tcp:127.0.0.1:{MultifdNode.FreePort()}";
        IncomingMigration incoming = destination.Listen(uri);

        qemu.Qmp.Execute("migrate", new { uri });
        JsonNode info = qemu.WaitForMigration(Wait);

        Assert.That(incoming.Finished.Wait(Wait), Is.True, "the destination finished");
        Assert.That(incoming.Status, Is.EqualTo(MigrationStatus.Completed), incoming.Error?.ToString());
        Assert.That(info["ram"]!["multifd-bytes"]!.GetValue<long>(), Is.GreaterThan(random.Length), "QEMU sent the pages on its channels");
        Assert.That(Hash(destination.ReadAllRam()), Is.EqualTo(Hash(expected)), "RAM identical to QEMU's pmemsave");
    }

    [TestCase(2)]
    [TestCase(4)]
    public void MiniVmm_to_Qemu(int channels)
    {
        using MultifdNode source = MultifdNode.RunningSource(RamSize, 3L << 20, seed: channels).WithMultifd(channels);
        using var qemu = new QemuPeer(_directory, RamSize, ["-incoming", "defer"]);
        qemu.Qmp.Execute("migrate-set-capabilities", new { capabilities = new[] { new { capability = "multifd", state = true } } });
        qemu.Qmp.Execute("migrate-set-parameters", new JsonObject { ["multifd-channels"] = channels });
        string uri = $"tcp:127.0.0.1:{MultifdNode.FreePort()}";
        qemu.Qmp.Execute("migrate-incoming", new { uri });

        MigrationSession session = source.Migrate(uri);
        Assert.That(session.Finished.Wait(Wait), Is.True, "the migration finished");
        Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.ToString());
        qemu.WaitForMigration(Wait);
        byte[] expected = source.ReadAllRam();
        byte[] actual = qemu.PhysicalMemory(0, RamSize);

        Assert.That(qemu.StandardError, Is.Empty);
        Assert.That(session.Snapshot().Ram!.MultifdBytes, Is.GreaterThan(3L << 20));
        Assert.That(Hash(actual), Is.EqualTo(Hash(expected)), "RAM identical in QEMU's pmemsave");
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Over_tls_both_ways(bool qemuIsSource)
    {
        var authority = TestCertificates.CreateAuthority("multifd CA");
        var leaf = TestCertificates.CreateLeaf(authority, "localhost");
        string server = TestCertificates.WriteServer(Path.Combine(_directory, "server"), authority, leaf);
        // QEMU's server asks for a client certificate even with verify-peer=off: the client has one.
        string client = TestCertificates.WriteClient(Path.Combine(_directory, "client"), authority, TestCertificates.CreateLeaf(authority, "client"));
        string uri = $"tcp:127.0.0.1:{MultifdNode.FreePort()}";
        var enable = new { capabilities = new[] { new { capability = "multifd", state = true } } };
        var tls = new JsonObject { ["multifd-channels"] = 2, ["tls-creds"] = "tls0", ["tls-hostname"] = "localhost", ["max-bandwidth"] = 0 };
        if (qemuIsSource)
        {
            string data = Path.Combine(_directory, "data.bin");
            byte[] random = new byte[2 << 20];
            new Random(3).NextBytes(random);
            File.WriteAllBytes(data, random);
            using var qemu = new QemuPeer(_directory, RamSize,
                ["-object", $"tls-creds-x509,id=tls0,dir={client},endpoint=client", "-device", $"loader,file={data},addr=0x300000"]);
            qemu.Qmp.Execute("migrate-set-capabilities", enable);
            qemu.Qmp.Execute("migrate-set-parameters", tls);
            byte[] expected = qemu.PhysicalMemory(0, RamSize);
            using MultifdNode destination = MultifdNode.Destination(RamSize).WithMultifd(2).WithTls("tls0", server, TlsEndpoint.Server);
            IncomingMigration incoming = destination.Listen(uri);
            qemu.Qmp.Execute("migrate", new { uri });
            JsonNode info = qemu.WaitForMigration(Wait);
            Assert.That(incoming.Finished.Wait(Wait), Is.True, "the destination finished");
            Assert.That(incoming.Status, Is.EqualTo(MigrationStatus.Completed), incoming.Error?.ToString());
            Assert.That(info["ram"]!["multifd-bytes"]!.GetValue<long>(), Is.GreaterThan(random.Length));
            Assert.That(Hash(destination.ReadAllRam()), Is.EqualTo(Hash(expected)), "RAM identical to QEMU's pmemsave");
        }
        else
        {
            using MultifdNode source = MultifdNode.RunningSource(RamSize, 2L << 20).WithMultifd(2).WithTls("tls0", client, TlsEndpoint.Client);
            using var qemu = new QemuPeer(_directory, RamSize,
                ["-object", $"tls-creds-x509,id=tls0,dir={server},endpoint=server,verify-peer=off", "-incoming", "defer"]);
            qemu.Qmp.Execute("migrate-set-capabilities", enable);
            qemu.Qmp.Execute("migrate-set-parameters", tls);
            qemu.Qmp.Execute("migrate-incoming", new { uri });
            MigrationSession session = source.Migrate(uri);
            Assert.That(session.Finished.Wait(Wait), Is.True, "the migration finished");
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.ToString());
            qemu.WaitForMigration(Wait);
            Assert.That(Hash(qemu.PhysicalMemory(0, RamSize)), Is.EqualTo(Hash(source.ReadAllRam())), "RAM identical in QEMU's pmemsave");
            Assert.That(qemu.StandardError, Is.Empty);
        }
    }

    private static string Hash(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes));
}
