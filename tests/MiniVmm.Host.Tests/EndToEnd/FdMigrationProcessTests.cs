using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;
using MiniVmm.Native;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// QMP <c>getfd</c>/<c>closefd</c> with descriptors passed over the QMP socket (SCM_RIGHTS), and
/// migrations through <c>fd:NAME</c>: real processes, a real TCP connection, real pipes.
/// </summary>
[TestFixture]
public sealed class FdMigrationProcessTests
{
    private const long DumpBytes = 4 << 20;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private TemporaryDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TemporaryDirectory();

    [TearDown]
    public void RemoveDirectory() => _directory.Dispose();

    [Test]
    public async Task Getfd_without_a_descriptor_or_with_a_name_starting_with_a_digit_fails_as_in_QEMU()
    {
        (MiniVmmProcess vm, QmpClient client) = await StartAsync("vm", "-S");
        await using (vm)
        await using (client)
        {
            JsonObject none = await client.ExecuteAsync("getfd", new() { ["fdname"] = "a" });
            Assert.That(JsonText.Of(none["error"]),
                Is.EqualTo("""{"class":"GenericError","desc":"No file descriptor supplied via SCM_RIGHTS"}"""));

            using PipeEnds pipe = Pipe.Create();
            JsonObject digit = await client.ExecuteWithDescriptorAsync("getfd", new() { ["fdname"] = "1st" }, pipe.Write);
            Assert.That(digit["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("Parameter 'fdname' expects a name not starting with a digit"));
            pipe.Write.Dispose();
            await AssertEveryWriterClosedAsync(pipe.Read, "getfd closes the descriptor it refuses");

            JsonObject missing = await client.ExecuteAsync("getfd");
            Assert.That(missing["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("Parameter 'fdname' is missing"));
        }
    }

    [Test]
    public async Task Getfd_keeps_the_descriptor_until_closefd_and_closefd_of_an_unknown_name_fails()
    {
        (MiniVmmProcess vm, QmpClient client) = await StartAsync("vm", "-S");
        await using (vm)
        await using (client)
        {
            using PipeEnds pipe = Pipe.Create();
            JsonObject taken = await client.ExecuteWithDescriptorAsync("getfd", new() { ["fdname"] = "stream" }, pipe.Write);
            Assert.That(JsonText.Of(taken), Is.EqualTo("""{"return":{}}"""));
            pipe.Write.Dispose();
            AssertAWriterRemains(pipe.Read, "the VM keeps its copy");

            Assert.That(JsonText.Of(await client.ExecuteAsync("closefd", new() { ["fdname"] = "stream" })), Is.EqualTo("""{"return":{}}"""));
            await AssertEveryWriterClosedAsync(pipe.Read, "closefd closes the VM's copy");

            JsonObject again = await client.ExecuteAsync("closefd", new() { ["fdname"] = "stream" });
            Assert.That(JsonText.Of(again["error"]),
                Is.EqualTo("""{"class":"GenericError","desc":"File descriptor named 'stream' not found"}"""));
        }
    }

    [Test]
    public async Task Getfd_under_a_name_in_use_closes_the_older_descriptor()
    {
        (MiniVmmProcess vm, QmpClient client) = await StartAsync("vm", "-S");
        await using (vm)
        await using (client)
        {
            using PipeEnds first = Pipe.Create();
            using PipeEnds second = Pipe.Create();
            await client.ReturnOfWithDescriptorAsync("getfd", new() { ["fdname"] = "x" }, first.Write);
            first.Write.Dispose();
            await client.ReturnOfWithDescriptorAsync("getfd", new() { ["fdname"] = "x" }, second.Write);
            second.Write.Dispose();

            await AssertEveryWriterClosedAsync(first.Read, "the replaced descriptor is closed");
            AssertAWriterRemains(second.Read, "the new one is kept");
            await client.ReturnOfAsync("closefd", new() { ["fdname"] = "x" });
            await AssertEveryWriterClosedAsync(second.Read, "closefd closes the new one");
        }
    }

    [Test]
    public async Task A_descriptor_no_command_took_is_closed_when_its_client_disconnects()
    {
        (MiniVmmProcess vm, QmpClient client) = await StartAsync("vm", "-S");
        await using (vm)
        {
            using PipeEnds pipe = Pipe.Create();
            await using (client)
            {
                await client.ReturnOfWithDescriptorAsync("query-status", null, pipe.Write);
                pipe.Write.Dispose();
                AssertAWriterRemains(pipe.Read, "the connection holds the descriptor for a later getfd");
            }

            await AssertEveryWriterClosedAsync(pipe.Read, "the connection closes what nobody took");
        }
    }

    [Test]
    public async Task Migrate_to_a_passed_tcp_socket_completes_with_equal_devices_and_memory()
    {
        string image = WriteLoaderImage();
        int port = FreeTcpPort();
        (MiniVmmProcess destination, QmpClient target) = await StartAsync(
            "dst", "-S", "-incoming", $"tcp:127.0.0.1:{port}", "-device", "x-sample,id=a");
        (MiniVmmProcess source, QmpClient client) = await StartAsync(
            "src", "-S", "-device", "x-sample,id=a,seed=5", "-device", $"loader,file={image},addr=0x100000");
        await using (destination)
        await using (target)
        await using (source)
        await using (client)
        {
            using (Socket connection = await ConnectAsync(port))
            {
                await client.ReturnOfWithDescriptorAsync("getfd", new() { ["fdname"] = "migfd" }, connection.SafeHandle);
            }

            JsonNode? sample = await client.ReturnOfAsync("x-query-device", new() { ["id"] = "a" });
            await client.ReturnOfAsync("migrate", new() { ["uri"] = "fd:migfd" });
            JsonObject sent = await client.WaitForMigrationEndAsync();
            JsonObject received = await target.WaitForMigrationEndAsync();

            Assert.That(sent["status"]?.GetValue<string>(), Is.EqualTo("completed"), $"{JsonText.Of(sent)}\n{source.Stderr}");
            Assert.That(received["status"]?.GetValue<string>(), Is.EqualTo("completed"), $"{JsonText.Of(received)}\n{destination.Stderr}");
            Assert.That(JsonText.Of(await target.ReturnOfAsync("x-query-device", new() { ["id"] = "a" })), Is.EqualTo(JsonText.Of(sample)));
            await AssertEqualMemoryAsync(client, target, image);

            JsonObject consumed = await client.ExecuteAsync("closefd", new() { ["fdname"] = "migfd" });
            Assert.That(consumed["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("File descriptor named 'migfd' not found"),
                "the migration took the descriptor out of the table");
        }
    }

    [Test]
    public async Task Cancel_wakes_a_migration_blocked_writing_to_a_passed_socket()
    {
        // 48 MiB of random data: far more than the socket buffers can hold.
        string image = _directory.File("big.bin");
        byte[] random = new byte[48 << 20];
        new Random(9).NextBytes(random);
        await File.WriteAllBytesAsync(image, random);
        using var sink = new TcpListener(IPAddress.Loopback, 0);
        sink.Start();
        int port = ((IPEndPoint)sink.LocalEndpoint).Port;
        (MiniVmmProcess source, QmpClient client) = await StartAsync(
            "src", "-S", "-device", $"loader,file={image},addr=0x100000");
        await using (source)
        await using (client)
        {
            using Socket connection = await ConnectAsync(port);
            using Socket neverReads = await sink.AcceptSocketAsync();
            await client.ReturnOfWithDescriptorAsync("getfd", new() { ["fdname"] = "stuck" }, connection.SafeHandle);
            await client.ReturnOfAsync("migrate-set-parameters", new() { ["max-bandwidth"] = 0 });
            await client.ReturnOfAsync("migrate", new() { ["uri"] = "fd:stuck" });

            // The peer never reads: once the socket buffers are full the migration thread blocks in write(2).
            long last = -1;
            for (int stable = 0; stable < 5;)
            {
                await Task.Delay(100);
                long sent = (await client.ReturnOfAsync("query-migrate"))?["ram"]?["transferred"]?.GetValue<long>() ?? 0;
                stable = sent == last ? stable + 1 : 0;
                last = sent;
            }

            await client.ReturnOfAsync("migrate_cancel");
            JsonObject end = await client.WaitForMigrationEndAsync();

            Assert.That(end["status"]?.GetValue<string>(), Is.EqualTo("cancelled"), JsonText.Of(end));
            Assert.That((await client.ReturnOfAsync("query-status"))?["status"]?.GetValue<string>(), Is.EqualTo("prelaunch"));
        }
    }

    [Test]
    public async Task Migrate_to_an_unknown_descriptor_name_fails_naming_it()
    {
        (MiniVmmProcess source, QmpClient client) = await StartAsync("src", "-S", "-device", "x-sample,id=a,seed=5");
        await using (source)
        await using (client)
        {
            await client.ExecuteAsync("migrate", new() { ["uri"] = "fd:unknown" });
            JsonObject info = await client.WaitForMigrationEndAsync();

            Assert.That(info["status"]?.GetValue<string>(), Is.EqualTo("failed"));
            Assert.That(info["error-desc"]?.GetValue<string>(), Is.EqualTo("File descriptor named 'unknown' has not been found"));
            await client.WaitForRunStateAsync("prelaunch");
        }
    }

    [Test]
    public async Task Migrate_incoming_from_a_passed_pipe_loads_a_saved_stream()
    {
        string image = WriteLoaderImage();
        string stream = _directory.File("stream.bin");
        string sourceDump = _directory.File("source.dump");
        JsonNode? sample;
        (MiniVmmProcess source, QmpClient client) = await StartAsync(
            "src", "-S", "-device", "x-sample,id=a,seed=5", "-device", $"loader,file={image},addr=0x100000");
        await using (source)
        await using (client)
        {
            sample = await client.ReturnOfAsync("x-query-device", new() { ["id"] = "a" });
            await client.ReturnOfAsync("pmemsave", new() { ["val"] = 0, ["size"] = DumpBytes, ["filename"] = sourceDump });
            await client.ReturnOfAsync("migrate", new() { ["uri"] = $"file:{stream}" });
            JsonObject saved = await client.WaitForMigrationEndAsync();
            Assert.That(saved["status"]?.GetValue<string>(), Is.EqualTo("completed"), source.Stderr);
        }

        (MiniVmmProcess destination, QmpClient target) = await StartAsync(
            "dst", "-S", "-incoming", "defer", "-device", "x-sample,id=a");
        await using (destination)
        await using (target)
        {
            JsonObject unknown = await target.ExecuteAsync("migrate-incoming", new() { ["uri"] = "fd:nothere" });
            Assert.That(unknown["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("File descriptor named 'nothere' has not been found"));

            using PipeEnds pipe = Pipe.Create();
            await target.ReturnOfWithDescriptorAsync("getfd", new() { ["fdname"] = "in" }, pipe.Read);
            pipe.Read.Dispose();
            await target.ReturnOfAsync("migrate-incoming", new() { ["uri"] = "fd:in" });

            byte[] bytes = await File.ReadAllBytesAsync(stream);
            Task writer = Task.Factory.StartNew(() =>
            {
                using (pipe.Write)
                {
                    pipe.Write.WriteAll(bytes);
                }
            }, TaskCreationOptions.LongRunning);

            JsonObject loaded = await target.WaitForMigrationEndAsync();
            await writer.WaitAsync(Deadline);
            Assert.That(loaded["status"]?.GetValue<string>(), Is.EqualTo("completed"), $"{JsonText.Of(loaded)}\n{destination.Stderr}");
            Assert.That(JsonText.Of(await target.ReturnOfAsync("x-query-device", new() { ["id"] = "a" })), Is.EqualTo(JsonText.Of(sample)));

            string targetDump = _directory.File("target.dump");
            await target.ReturnOfAsync("pmemsave", new() { ["val"] = 0, ["size"] = DumpBytes, ["filename"] = targetDump });
            byte[] expected = await File.ReadAllBytesAsync(sourceDump);
            byte[] actual = await File.ReadAllBytesAsync(targetDump);
            Assert.That(actual.AsSpan().SequenceEqual(expected), Is.True, "guest memory differs after loading through the pipe");
        }
    }

    private async Task<(MiniVmmProcess Process, QmpClient Client)> StartAsync(string name, params string[] arguments)
    {
        string socket = _directory.File($"{name}.sock");
        MiniVmmProcess process = await MiniVmmProcess.StartWithQmpAsync(socket, ["-M", "none", "-m", "64M", .. arguments]);
        try
        {
            return (process, await QmpClient.ConnectAndNegotiateAsync(socket));
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>A file of random bytes for <c>-device loader</c>.</summary>
    private string WriteLoaderImage()
    {
        byte[] image = new byte[256 << 10];
        new Random(11).NextBytes(image);
        string path = _directory.File("image.bin");
        File.WriteAllBytes(path, image);
        return path;
    }

    private async Task AssertEqualMemoryAsync(QmpClient source, QmpClient target, string image)
    {
        string sourceDump = _directory.File("source.dump");
        string targetDump = _directory.File("target.dump");
        await source.ReturnOfAsync("pmemsave", new() { ["val"] = 0, ["size"] = DumpBytes, ["filename"] = sourceDump });
        await target.ReturnOfAsync("pmemsave", new() { ["val"] = 0, ["size"] = DumpBytes, ["filename"] = targetDump });
        byte[] sent = await File.ReadAllBytesAsync(sourceDump);
        byte[] received = await File.ReadAllBytesAsync(targetDump);
        byte[] loaded = await File.ReadAllBytesAsync(image);
        Assert.That(received.AsSpan().SequenceEqual(sent), Is.True, "guest memory differs after migration");
        Assert.That(received.AsSpan(0x100000, loaded.Length).SequenceEqual(loaded), Is.True, "the loader's image did not arrive");
    }

    private static int FreeTcpPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static async Task<Socket> ConnectAsync(int port)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                using var timeout = new CancellationTokenSource(Deadline);
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
                return socket;
            }
            catch (SocketException) when (clock.Elapsed < Deadline)
            {
                socket.Dispose();
                await Task.Delay(50);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    /// <summary>Waits until reading the pipe reports end of file: nobody, in any process, holds its write end.</summary>
    private static async Task AssertEveryWriterClosedAsync(FileDescriptorHandle readEnd, string because)
    {
        readEnd.NonBlocking = true;
        byte[] buffer = new byte[64];
        var clock = Stopwatch.StartNew();
        while (!(readEnd.TryRead(buffer, out int count) && count == 0))
        {
            if (clock.Elapsed > Deadline)
            {
                Assert.Fail($"a write end is still open after {Deadline.TotalSeconds} s: {because}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Checks that reading the empty pipe would block: some process still holds a write end.</summary>
    private static void AssertAWriterRemains(FileDescriptorHandle readEnd, string because)
    {
        readEnd.NonBlocking = true;
        Assert.That(readEnd.TryRead(new byte[64], out _), Is.False, because);
    }
}
