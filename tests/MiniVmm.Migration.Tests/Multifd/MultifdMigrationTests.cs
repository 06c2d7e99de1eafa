using System.Net;
using System.Net.Sockets;
using MiniVmm.Host.Tests.Support;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Multifd;
using MiniVmm.Migration.Transport.Tls;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Multifd;

/// <summary>MiniVmm → MiniVmm migrations with multifd over real sockets (tcp, unix, TLS), and a channel failing.</summary>
[TestFixture]
[NonParallelizable]
public sealed class MultifdMigrationTests
{
    private const long RamSize = 32L << 20;
    private const long DataBytes = 6L << 20;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private string _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = Directory.CreateTempSubdirectory("minivmm-mfd-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, recursive: true);

    [TestCase(2, "tcp")]
    [TestCase(4, "tcp")]
    [TestCase(3, "unix")]
    public void Ram_arrives_identical_over_the_channels(int channels, string scheme)
    {
        using MultifdNode source = MultifdNode.RunningSource(RamSize, DataBytes).WithMultifd(channels);
        using MultifdNode destination = MultifdNode.Destination(RamSize).WithMultifd(channels);
        string uri = scheme == "tcp" ? $"tcp:127.0.0.1:{MultifdNode.FreePort()}" : $"unix:{Path.Combine(_directory, "m.sock")}";

        MigrationInfo info = Migrate(source, destination, uri);

        long dataPages = DataBytes / 4096 - 3 + 1;
        Assert.Multiple(() =>
        {
            Assert.That(info.Ram!.Normal, Is.GreaterThanOrEqualTo(dataPages), "every data page sent once at least");
            Assert.That(info.Ram.MultifdBytes, Is.GreaterThanOrEqualTo(info.Ram.Normal * 4096 + (info.Ram.Normal / 128) * MultifdWire.PacketHeaderSize),
                "multifd-bytes: pages and packet headers");
            Assert.That(info.Ram.Transferred, Is.GreaterThan(info.Ram.MultifdBytes), "transferred counts the channels and the main stream");
            Assert.That(info.ToJson()["ram"]!["multifd-bytes"]!.GetValue<long>(), Is.EqualTo(info.Ram.MultifdBytes), "query-migrate shows it");
            Assert.That(destination.ReadAllRam().AsSpan().SequenceEqual(source.ReadAllRam()), Is.True, "RAM identical");
        });
    }

    [Test]
    public void Without_multifd_multifd_bytes_stay_zero()
    {
        using MultifdNode source = MultifdNode.RunningSource(RamSize, 1L << 20).WithMultifd(2, enabled: false);
        using MultifdNode destination = MultifdNode.Destination(RamSize);
        MigrationInfo info = Migrate(source, destination, $"tcp:127.0.0.1:{MultifdNode.FreePort()}");
        Assert.That(info.Ram!.MultifdBytes, Is.Zero);
        Assert.That(destination.ReadAllRam().AsSpan().SequenceEqual(source.ReadAllRam()), Is.True, "RAM identical");
    }

    [Test]
    public void Ram_arrives_identical_over_tls_channels()
    {
        var authority = TestCertificates.CreateAuthority("multifd CA");
        var leaf = TestCertificates.CreateLeaf(authority, "localhost");
        string server = TestCertificates.WriteServer(Path.Combine(_directory, "server"), authority, leaf);
        string client = TestCertificates.WriteClient(Path.Combine(_directory, "client"), authority, null);
        using MultifdNode source = MultifdNode.RunningSource(RamSize, DataBytes).WithMultifd(2).WithTls("tls0", client, TlsEndpoint.Client);
        using MultifdNode destination = MultifdNode.Destination(RamSize).WithMultifd(2).WithTls("tls0", server, TlsEndpoint.Server);

        MigrationInfo info = Migrate(source, destination, $"tcp:127.0.0.1:{MultifdNode.FreePort()}");

        Assert.That(info.Ram!.MultifdBytes, Is.GreaterThan(DataBytes));
        Assert.That(destination.ReadAllRam().AsSpan().SequenceEqual(source.ReadAllRam()), Is.True, "RAM identical");
    }

    [Test]
    public void Multifd_over_exec_fails_as_qemu_says_and_the_source_runs_on()
    {
        using MultifdNode source = MultifdNode.RunningSource(RamSize, 1L << 20).WithMultifd(2);
        MigrationSession session = source.Migrate($"exec:cat > {Path.Combine(_directory, "s.bin")}");
        Assert.That(session.Finished.Wait(Wait), Is.True);
        Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
        Assert.That(session.Error!.Message, Does.Contain("multifd is not supported by current protocol"));
        Assert.That(source.Vm.State, Is.EqualTo(RunState.Running));
    }

    [Test]
    public void A_channel_that_breaks_fails_the_migration_and_the_source_runs_on_with_its_memory()
    {
        // A destination that takes the main connection and both channels, reads the init
        // packets, then closes channel 1: the source's channel write fails.
        using MultifdNode source = MultifdNode.RunningSource(RamSize, DataBytes).WithMultifd(2);
        byte[] before = source.ReadAllRam();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(8);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var peer = Task.Run(() =>
        {
            using Socket main = listener.Accept();
            using Socket first = listener.Accept();
            using Socket second = listener.Accept();
            byte[] init = new byte[MultifdWire.InitPacketSize];
            first.Receive(init, SocketFlags.None);
            second.Receive(init, SocketFlags.None);
            second.Close();
            first.Close();
            byte[] sink = new byte[1 << 16];
            while (main.Receive(sink) > 0)
            {
            }
        });

        MigrationSession session = source.Migrate($"tcp:127.0.0.1:{port}");
        Assert.That(session.Finished.Wait(Wait), Is.True, "the migration ended");
        Assert.That(peer.Wait(Wait), Is.True, "the fake destination ended");

        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
            Assert.That(session.Error, Is.InstanceOf<MultifdChannelException>(), session.Error?.ToString());
            Assert.That(session.Error!.Message, Does.StartWith("multifd channel "));
            Assert.That(source.Vm.State, Is.EqualTo(RunState.Running), "the source runs again");
            Assert.That(source.ReadAllRam().AsSpan().SequenceEqual(before), Is.True, "memory intact");
        });
    }

    private static MigrationInfo Migrate(MultifdNode source, MultifdNode destination, string uri)
    {
        IncomingMigration incoming = destination.Listen(uri);
        MigrationSession session = source.Migrate(uri);
        Assert.That(session.Finished.Wait(Wait), Is.True, "the migration finished");
        Assert.That(incoming.Finished.Wait(Wait), Is.True, "the destination finished");
        MigrationInfo info = source.Coordinator.Query();
        Assert.That(info.Status, Is.EqualTo(MigrationStatus.Completed), info.ErrorDescription);
        Assert.That(incoming.Status, Is.EqualTo(MigrationStatus.Completed), incoming.Error?.ToString());
        return info;
    }
}
