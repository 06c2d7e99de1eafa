using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// TLS migration with real processes, in QEMU's spelling (<c>-object tls-creds-x509</c>,
/// <c>tls-creds</c>, <c>tls-hostname</c>): MiniVmm to MiniVmm, QEMU 7.2 to MiniVmm and back with
/// mutual authentication, the failures an operator meets (wrong CA, expired certificate, host name
/// mismatch, a client without a certificate), and a capture that shows the guest's RAM does not
/// travel in the clear.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class TlsMigrationProcessTests : VmFixture
{
    private const long Ram64M = 64L << 20;
    private const long LoaderAddress = 0x400000;
    private const long PatternAddress = 0x900000;
    private static readonly string[] Machine = ["-M", "none", "-m", "64M", "-nodefaults", "-display", "none"];

    private X509Certificate2 _authority = null!;
    private string _serverDir = null!;
    private string _clientDir = null!;
    private byte[] _data = null!;

    [SetUp]
    public void CreateCertificates()
    {
        _authority = TestCertificates.CreateAuthority("MiniVmm test CA");
        using X509Certificate2 server = TestCertificates.CreateLeaf(_authority, "destination");
        using X509Certificate2 client = TestCertificates.CreateLeaf(_authority, "source");
        _serverDir = TestCertificates.WriteServer(Temp.File("server"), _authority, server);
        _clientDir = TestCertificates.WriteClient(Temp.File("client"), _authority, client);
        _data = GuestRam.WriteRandomFile(Temp.File("data.bin"), 2 << 20, seed: 13);
    }

    [TearDown]
    public void DisposeCertificates() => _authority.Dispose();

    private static string[] Creds(string directory, string endpoint, bool verifyPeer = true) =>
        ["-object", $"tls-creds-x509,id=tls0,dir={directory},endpoint={endpoint},verify-peer={(verifyPeer ? "on" : "off")}"];

    private string[] Loader => ["-device", $"loader,file={Temp.File("data.bin")},addr=0x{LoaderAddress:x}"];

    private static async Task SetReturnPathAsync(Vm vm) =>
        await vm.ReturnOfAsync("migrate-set-capabilities", new()
        {
            ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "return-path", ["state"] = true }),
        });

    private async Task<Vm> StartDestinationAsync(VmProgram program, string serverDir, string uri, bool returnPath, bool verifyPeer = true, bool tls = true)
    {
        Vm destination = await StartAsync(program, "dst", [.. Machine, .. Creds(serverDir, "server", verifyPeer), "-incoming", "defer"]);
        if (tls)
        {
            await destination.SetParametersAsync(new() { ["tls-creds"] = "tls0" });
        }

        if (returnPath)
        {
            await SetReturnPathAsync(destination);
        }

        await destination.ReturnOfAsync("migrate-incoming", new() { ["uri"] = uri });
        return destination;
    }

    private async Task<Vm> StartSourceAsync(VmProgram program, string clientDir, bool returnPath, string? hostname = null, bool tls = true, params string[] extra)
    {
        Vm source = await StartAsync(program, "src", [.. Machine, .. Creds(clientDir, "client"), .. Loader, .. extra]);
        var parameters = new JsonObject { ["tls-creds"] = tls ? "tls0" : "" };
        if (hostname is not null)
        {
            parameters["tls-hostname"] = hostname;
        }

        await source.SetParametersAsync(parameters);
        if (returnPath)
        {
            await SetReturnPathAsync(source);
        }

        return source;
    }

    private async Task AssertRamIdenticalAsync(Vm source, Vm destination)
    {
        byte[] sourceRam = await source.ReadRamAsync(0, Ram64M, Temp.File("src.img"));
        byte[] destinationRam = await destination.ReadRamAsync(0, Ram64M, Temp.File("dst.img"));
        Assert.Multiple(() =>
        {
            Assert.That(sourceRam.AsSpan((int)LoaderAddress, _data.Length).SequenceEqual(_data), Is.True, "the source's loader data");
            Assert.That(destinationRam.AsSpan().SequenceEqual(sourceRam), Is.True, GuestRam.FirstDifference(sourceRam, destinationRam));
        });
    }

    [Test]
    public async Task MiniVmm_to_MiniVmm_over_tls_with_mutual_authentication_and_return_path([Values] bool returnPath)
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartDestinationAsync(VmProgram.MiniVmm, _serverDir, uri, returnPath);
        Vm source = await StartSourceAsync(VmProgram.MiniVmm, _clientDir, returnPath);

        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await AssertRamIdenticalAsync(source, destination);
        JsonObject parameters = (await source.ReturnOfAsync("query-migrate-parameters"))!.AsObject();
        Assert.That(parameters["tls-creds"]?.GetValue<string>(), Is.EqualTo("tls0"));
    }

    [Test]
    public async Task MiniVmm_to_MiniVmm_over_tls_on_a_unix_socket_needs_tls_hostname()
    {
        string uri = $"unix:{Temp.File("mig.sock")}";
        Vm destination = await StartDestinationAsync(VmProgram.MiniVmm, _serverDir, uri, returnPath: true);
        Vm source = await StartSourceAsync(VmProgram.MiniVmm, _clientDir, returnPath: true);

        await source.MigrateAsync(uri);
        JsonObject refused = await source.WaitForMigrationEndAsync();
        Assert.That(refused["error-desc"]?.GetValue<string>(), Is.EqualTo("No hostname available for TLS"), refused.ToJsonString());
        Assert.That(await source.RunStateAsync(), Is.EqualTo("running"));

        await source.SetParametersAsync(new() { ["tls-hostname"] = "localhost" });
        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await AssertRamIdenticalAsync(source, destination);
    }

    [Test]
    public async Task MiniVmm_to_MiniVmm_over_tls_on_a_passed_socket_with_tls_hostname_and_return_path()
    {
        int port = GuestRam.FreeTcpPort();
        Vm destination = await StartDestinationAsync(VmProgram.MiniVmm, _serverDir, $"tcp:127.0.0.1:{port}", returnPath: true);
        Vm source = await StartSourceAsync(VmProgram.MiniVmm, _clientDir, returnPath: true, hostname: "localhost");
        using (var connection = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            await connection.ConnectAsync(System.Net.IPAddress.Loopback, port);
            await source.Qmp.ReturnOfWithDescriptorAsync("getfd", new() { ["fdname"] = "migfd" }, connection.SafeHandle);
        }

        await source.MigrateAsync("fd:migfd");
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await AssertRamIdenticalAsync(source, destination);
    }

    [Test]
    public async Task Credentials_made_with_object_add_serve_a_migration_and_object_del_removes_them()
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartAsync(VmProgram.MiniVmm, "dst", [.. Machine, "-incoming", "defer"]);
        JsonObject missing = await destination.Qmp.ExecuteAsync("object-add", new()
        {
            ["qom-type"] = "tls-creds-x509", ["id"] = "tls1", ["dir"] = Temp.File("nowhere"), ["endpoint"] = "server",
        });
        Assert.That(missing["error"]?["desc"]?.GetValue<string>(),
            Is.EqualTo($"Unable to access credentials {Temp.File("nowhere")}/ca-cert.pem: No such file or directory"));
        await destination.ReturnOfAsync("object-add", new()
        {
            ["qom-type"] = "tls-creds-x509", ["id"] = "tls1", ["dir"] = _serverDir, ["endpoint"] = "server", ["verify-peer"] = true,
        });
        await destination.SetParametersAsync(new() { ["tls-creds"] = "tls1" });
        await destination.ReturnOfAsync("migrate-incoming", new() { ["uri"] = uri });
        Vm source = await StartAsync(VmProgram.MiniVmm, "src", [.. Machine, .. Loader]);
        await source.ReturnOfAsync("object-add", new()
        {
            ["qom-type"] = "tls-creds-x509", ["id"] = "tls1", ["dir"] = _clientDir, ["endpoint"] = "client",
        });
        await source.SetParametersAsync(new() { ["tls-creds"] = "tls1" });

        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await AssertRamIdenticalAsync(source, destination);
        Assert.That(source.Process.Stderr, Does.Contain("outgoing migration: TLS session established"));

        await source.ReturnOfAsync("object-del", new() { ["id"] = "tls1" });
        JsonObject again = await source.Qmp.ExecuteAsync("object-del", new() { ["id"] = "tls1" });
        Assert.That(again["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("object 'tls1' not found"));
    }

    [Test]
    public async Task Object_whose_files_are_missing_exits_1_with_qemus_message()
    {
        await using MiniVmmProcess vm = MiniVmmProcess.Start(
            "run", "-M", "none", "-object", $"tls-creds-x509,id=tls0,dir={Temp.File("empty")},endpoint=server");

        Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(vm.Stderr.Trim(), Is.EqualTo(
            $"minivmm: -object tls-creds-x509,id=tls0,dir={Temp.File("empty")},endpoint=server: Unable to access credentials {Temp.File("empty")}/ca-cert.pem: No such file or directory"));
    }

    [TestCase(Fault.ClientWithoutCertificate, "the server requires a client certificate (verify-peer=on)")]
    [TestCase(Fault.HostnameMismatch, "the server's certificate does not name 'destination.example'")]
    [TestCase(Fault.WrongCa, "is not signed by ca-cert.pem")]
    public async Task A_qemu_destination_refusing_the_handshake_is_named_and_the_source_runs_on(Fault fault, string expected)
    {
        using X509Certificate2 other = TestCertificates.CreateAuthority("Another CA");
        using X509Certificate2 client = TestCertificates.CreateLeaf(_authority, "source");
        string clientDir = fault switch
        {
            Fault.ClientWithoutCertificate => TestCertificates.WriteClient(Temp.File("client-none"), _authority, null),
            Fault.WrongCa => TestCertificates.WriteClient(Temp.File("client-other-ca"), other, client),
            _ => _clientDir,
        };
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartDestinationAsync(VmProgram.Qemu, _serverDir, uri, returnPath: true);
        Vm source = await StartSourceAsync(
            VmProgram.MiniVmm, clientDir, returnPath: true, fault == Fault.HostnameMismatch ? "destination.example" : null);

        await source.MigrateAsync(uri);
        JsonObject failed = await source.WaitForMigrationEndAsync();

        // QEMU 7.2 reports a failed TLS handshake on stderr and may keep running (it does, for a missing client certificate).
        for (int i = 0; i < 100 && destination.Process.Stderr.Length == 0; i++)
        {
            await Task.Delay(50);
        }

        TestContext.Out.WriteLine($"source: {failed["error-desc"]}\nQEMU destination: {destination.Process.Stderr}");

        Assert.Multiple(async () =>
        {
            Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), failed.ToJsonString());
            Assert.That(failed["error-desc"]?.GetValue<string>(), Does.StartWith("TLS handshake with 127.0.0.1:").And.Contain(expected), failed.ToJsonString());
            Assert.That(await source.RunStateAsync(), Is.EqualTo("running"));
        });
    }

    /// <summary>
    /// Throughput over TLS measured next to QEMU's in the same run: 256 MiB of random RAM (no
    /// zero pages), unlimited bandwidth, MiniVmm → MiniVmm and QEMU → QEMU, both with TLS, and
    /// MiniVmm without TLS for scale. Printed as MB/s and ratios; asserted only to complete.
    /// </summary>
    [Test]
    public async Task Throughput_over_tls_next_to_qemus_as_a_ratio()
    {
        string loader = Temp.File("big.bin");
        GuestRam.WriteLargeRandomFile(loader, 256L << 20, seed: 256);
        string[] machine = ["-M", "none", "-m", "256M", "-nodefaults", "-display", "none", "-S"];

        async Task<double> MeasureAsync(VmProgram program, bool tls)
        {
            string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
            await using Vm destination = await Vm.StartAsync(
                program, Temp, $"dst-{program}-{tls}", [.. machine, .. Creds(_serverDir, "server"), "-incoming", "defer"]);
            await destination.SetParametersAsync(new() { ["tls-creds"] = tls ? "tls0" : "" });
            await destination.ReturnOfAsync("migrate-incoming", new() { ["uri"] = uri });
            await using Vm source = await Vm.StartAsync(
                program, Temp, $"src-{program}-{tls}", [.. machine, .. Creds(_clientDir, "client"), "-device", $"loader,file={loader},addr=0"]);
            await source.SetParametersAsync(new() { ["tls-creds"] = tls ? "tls0" : "", ["max-bandwidth"] = 64L << 30 });
            await source.MigrateAsync(uri);
            JsonObject info = await source.WaitForCompletedAsync();
            await destination.WaitForCompletedAsync();
            long bytes = info["ram"]!["transferred"]!.GetValue<long>();
            long ms = Math.Max(1, info["total-time"]!.GetValue<long>());
            double mbPerSecond = bytes / 1e6 / (ms / 1000.0);
            TestContext.Out.WriteLine($"{program} -> {program}, tls={tls}: {bytes} bytes in {ms} ms = {mbPerSecond:F0} MB/s");
            return mbPerSecond;
        }

        double miniVmmTls = await MeasureAsync(VmProgram.MiniVmm, tls: true);
        double qemuTls = await MeasureAsync(VmProgram.Qemu, tls: true);
        double miniVmmPlain = await MeasureAsync(VmProgram.MiniVmm, tls: false);
        TestContext.Out.WriteLine(
            $"TLS throughput ratio MiniVmm/QEMU: {miniVmmTls / qemuTls:F2}; MiniVmm TLS/plain: {miniVmmTls / miniVmmPlain:F2}");
        Assert.That(miniVmmTls, Is.GreaterThan(0));
    }

    [Test]
    public async Task Exec_and_file_with_tls_are_refused_and_the_source_runs_on([Values("exec:cat > /dev/null", "file:/dev/null")] string uri)
    {
        Vm source = await StartSourceAsync(VmProgram.MiniVmm, _clientDir, returnPath: false);

        await source.MigrateAsync(uri);
        JsonObject failed = await source.WaitForMigrationEndAsync();

        Assert.That(failed["error-desc"]?.GetValue<string>(), Does.StartWith("TLS is not supported over"), failed.ToJsonString());
        Assert.That(await source.RunStateAsync(), Is.EqualTo("running"));
    }

    [Test]
    public async Task Qemu_to_MiniVmm_over_tls_with_mutual_authentication([Values] bool returnPath)
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartDestinationAsync(VmProgram.MiniVmm, _serverDir, uri, returnPath);
        Vm source = await StartSourceAsync(VmProgram.Qemu, _clientDir, returnPath);

        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await AssertRamIdenticalAsync(source, destination);
    }

    [Test]
    public async Task MiniVmm_to_Qemu_over_tls_with_mutual_authentication([Values] bool returnPath)
    {
        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartDestinationAsync(VmProgram.Qemu, _serverDir, uri, returnPath);
        Vm source = await StartSourceAsync(VmProgram.MiniVmm, _clientDir, returnPath);

        await source.MigrateAsync(uri);
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await AssertRamIdenticalAsync(source, destination);
    }

    public enum Fault
    {
        WrongCa,
        ExpiredServerCertificate,
        HostnameMismatch,
        ClientWithoutCertificate,
        ClientFromAnotherCa,
    }

    [Test]
    public async Task A_failed_tls_handshake_names_its_cause_and_the_source_runs_on([Values] Fault fault)
    {
        string serverDir = _serverDir;
        string clientDir = _clientDir;
        string? hostname = null;
        string expected;
        using X509Certificate2 other = TestCertificates.CreateAuthority("Another CA");
        switch (fault)
        {
            case Fault.WrongCa:
                using (X509Certificate2 client = TestCertificates.CreateLeaf(_authority, "source"))
                {
                    // A good client certificate, but the source trusts another CA than the one that signed the destination's.
                    clientDir = TestCertificates.WriteClient(Temp.File("client-other-ca"), other, client);
                }

                expected = "is not signed by ca-cert.pem in " + clientDir;
                break;
            case Fault.ExpiredServerCertificate:
                using (X509Certificate2 expired = TestCertificates.CreateLeaf(_authority, "expired", expired: true))
                {
                    serverDir = TestCertificates.WriteServer(Temp.File("server-expired"), _authority, expired);
                }

                expected = "the server's certificate 'CN=expired' expired on";
                break;
            case Fault.HostnameMismatch:
                hostname = "destination.example";
                expected = "the server's certificate does not name 'destination.example'";
                break;
            case Fault.ClientWithoutCertificate:
                clientDir = TestCertificates.WriteClient(Temp.File("client-none"), _authority, null);
                expected = "requires a client certificate";
                break;
            default:
                using (X509Certificate2 stranger = TestCertificates.CreateLeaf(other, "stranger"))
                {
                    clientDir = TestCertificates.WriteClient(Temp.File("client-stranger"), _authority, stranger);
                }

                expected = "probably refused this side's certificate";
                break;
        }

        string uri = $"tcp:127.0.0.1:{GuestRam.FreeTcpPort()}";
        Vm destination = await StartDestinationAsync(VmProgram.MiniVmm, serverDir, uri, returnPath: true);
        Vm source = await StartSourceAsync(VmProgram.MiniVmm, clientDir, returnPath: true, hostname);

        await source.MigrateAsync(uri);
        JsonObject failed = await source.WaitForMigrationEndAsync();
        // Like QEMU 7.2, a destination whose incoming migration failed exits, with the reason on stderr.
        int exit = await destination.Process.WaitForExitAsync();
        TestContext.Out.WriteLine($"source: {failed["error-desc"]}\ndestination (exit {exit}): {destination.Process.Stderr}");

        Assert.Multiple(async () =>
        {
            Assert.That(failed["status"]?.GetValue<string>(), Is.EqualTo("failed"), failed.ToJsonString());
            Assert.That(failed["error-desc"]?.GetValue<string>(), Does.StartWith(fault == Fault.ClientFromAnotherCa ? "" : "TLS handshake with 127.0.0.1:").And.Contain(expected), failed.ToJsonString());
            Assert.That(exit, Is.Not.EqualTo(0), destination.Process.Stderr);
            Assert.That(await source.RunStateAsync(), Is.EqualTo("running"));
        });
    }

    [Test]
    public async Task A_capture_of_the_tls_connection_does_not_hold_a_pattern_from_guest_ram_while_a_plain_one_does([Values] bool tls)
    {
        byte[] pattern = new byte[64];
        for (int i = 0; i < pattern.Length; i++)
        {
            pattern[i] = (byte)(0xA5 ^ (i * 37));
        }

        File.WriteAllBytes(Temp.File("pattern.bin"), pattern);
        int port = GuestRam.FreeTcpPort();
        Vm destination = await StartDestinationAsync(VmProgram.MiniVmm, _serverDir, $"tcp:127.0.0.1:{port}", returnPath: false, tls: tls);
        await using var relay = new RecordingTcpRelay(port);
        Vm source = await StartSourceAsync(
            VmProgram.MiniVmm, _clientDir, returnPath: false, hostname: null, tls, "-device", $"loader,file={Temp.File("pattern.bin")},addr=0x{PatternAddress:x}");

        await source.MigrateAsync($"tcp:127.0.0.1:{relay.Port}");
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        byte[] landed = await destination.ReadRamAsync(PatternAddress, pattern.Length, Temp.File("pattern.img"));
        byte[] capture = relay.Recorded;
        TestContext.Out.WriteLine($"captured {capture.Length} bytes, tls={tls}");

        Assert.Multiple(() =>
        {
            Assert.That(landed, Is.EqualTo(pattern), "the pattern arrived in the destination's RAM");
            Assert.That(capture.Length, Is.GreaterThan(4096));
            Assert.That(capture.AsSpan().IndexOf(pattern) >= 0, Is.EqualTo(!tls), tls ? "the pattern travelled in the clear" : "the plain capture lacks the pattern");
        });
    }
}
