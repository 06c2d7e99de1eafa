using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary><c>minivmm run</c> as a real process, driven over its QMP socket.</summary>
[TestFixture]
public sealed class QmpServerProcessTests
{
    private TemporaryDirectory _directory = null!;
    private string _socket = null!;

    [SetUp]
    public void CreateDirectory()
    {
        _directory = new TemporaryDirectory();
        _socket = _directory.File("q.sock");
    }

    [TearDown]
    public void RemoveDirectory() => _directory.Dispose();

    private Task<MiniVmmProcess> StartPausedAsync() =>
        MiniVmmProcess.StartWithQmpAsync(_socket, "-M", "none", "-m", "64M", "-S");

    [Test]
    public async Task Greeting_has_QEMU_7_2_shape()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();
        await using QmpClient client = await QmpClient.ConnectAsync(_socket);

        Assert.That(JsonText.Of(client.Greeting), Is.EqualTo(
            """{"QMP":{"version":{"qemu":{"major":7,"minor":2,"micro":0},"package":"MiniVmm 0.1"},"capabilities":[]}}"""));
    }

    [Test]
    public async Task Commands_before_negotiation_are_rejected_and_negotiating_twice_is_an_error()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();
        await using QmpClient client = await QmpClient.ConnectAsync(_socket);

        JsonObject early = await client.ExecuteAsync("query-status");
        JsonObject first = await client.ExecuteAsync("qmp_capabilities");
        JsonObject second = await client.ExecuteAsync("qmp_capabilities");

        Assert.Multiple(() =>
        {
            Assert.That(early["error"]?["class"]?.GetValue<string>(), Is.EqualTo("CommandNotFound"));
            Assert.That(early["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("Expecting capabilities negotiation with 'qmp_capabilities'"));
            Assert.That(JsonText.Of(first), Is.EqualTo("""{"return":{}}"""));
            Assert.That(second["error"]?["class"]?.GetValue<string>(), Is.EqualTo("CommandNotFound"));
            Assert.That(second["error"]?["desc"]?.GetValue<string>(), Is.EqualTo("Capabilities negotiation is already complete, command ignored"));
        });
    }

    [Test]
    public async Task Paused_vm_goes_through_cont_stop_and_quit()
    {
        MiniVmmProcess vm = await StartPausedAsync();
        await using (vm)
        {
            await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(_socket);

            Assert.That(await StatusAsync(client), Is.EqualTo("prelaunch"));

            Assert.That((await client.ExecuteAsync("cont")).ContainsKey("return"), Is.True);
            JsonObject resume = await client.WaitForEventAsync("RESUME");
            Assert.That(resume.ContainsKey("data"), Is.False, "RESUME carries no data");
            Assert.That(resume["timestamp"]?["seconds"]?.GetValue<long>(), Is.GreaterThan(0));
            JsonObject running = (JsonObject)(await client.ExecuteAsync("query-status"))["return"]!;
            Assert.That(JsonText.Of(running), Is.EqualTo("""{"status":"running","singlestep":false,"running":true}"""));

            Assert.That((await client.ExecuteAsync("stop")).ContainsKey("return"), Is.True);
            await client.WaitForEventAsync("STOP");
            Assert.That(await StatusAsync(client), Is.EqualTo("paused"));

            JsonObject quit = await client.ExecuteAsync("quit");
            Assert.That(JsonText.Of(quit), Is.EqualTo("""{"return":{}}"""));
            JsonObject shutdown = await client.WaitForEventAsync("SHUTDOWN");
            Assert.That(JsonText.Of(shutdown["data"]), Is.EqualTo("""{"guest":false,"reason":"host-qmp-quit"}"""));

            Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(0), vm.Stderr);
            Assert.That(File.Exists(_socket), Is.False, "the socket file is removed on exit");
        }
    }

    [Test]
    public async Task Without_S_the_vm_runs()
    {
        await using MiniVmmProcess vm = await MiniVmmProcess.StartWithQmpAsync(_socket, "-M", "none", "-m", "64M");
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(_socket);

        Assert.That(await StatusAsync(client), Is.EqualTo("running"));
    }

    [Test]
    public async Task Id_is_echoed_in_success_and_error_replies()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();
        await using QmpClient client = await QmpClient.ConnectAsync(_socket);

        JsonObject rejected = await client.ExecuteAsync("query-status", id: new JsonObject { ["n"] = 1 });
        JsonObject accepted = await client.ExecuteAsync("qmp_capabilities", id: "abc");
        JsonObject unknown = await client.ExecuteAsync("no-such-command", id: 42);

        Assert.Multiple(() =>
        {
            Assert.That(JsonText.Of(rejected["id"]), Is.EqualTo("""{"n":1}"""));
            Assert.That(JsonText.Of(accepted), Is.EqualTo("""{"return":{},"id":"abc"}"""));
            Assert.That(unknown["id"]?.GetValue<int>(), Is.EqualTo(42));
        });
    }

    [Test]
    public async Task Bad_json_gets_an_error_and_the_connection_still_answers()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(_socket);

        JsonObject error = await client.SendRawAsync("{\"execute\": nonsense}\n");

        Assert.That(error["error"]?["class"]?.GetValue<string>(), Is.EqualTo("GenericError"));
        Assert.That(error["error"]?["desc"]?.GetValue<string>(), Does.StartWith("JSON parse error"));
        Assert.That(await StatusAsync(client), Is.EqualTo("prelaunch"));
    }

    [Test]
    public async Task Unknown_command_and_non_object_input_are_errors()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(_socket);

        JsonObject unknown = await client.ExecuteAsync("frobnicate");
        JsonObject array = await client.SendRawAsync("[1, 2]\n");
        JsonObject noExecute = await client.SendRawAsync("{\"arguments\": {}}\n");

        Assert.Multiple(() =>
        {
            Assert.That(JsonText.Of(unknown), Is.EqualTo(
                """{"error":{"class":"CommandNotFound","desc":"The command frobnicate has not been found"}}"""));
            Assert.That(JsonText.Of(array), Is.EqualTo(
                """{"error":{"class":"GenericError","desc":"QMP input must be a JSON object"}}"""));
            Assert.That(JsonText.Of(noExecute), Is.EqualTo(
                """{"error":{"class":"GenericError","desc":"QMP input lacks member 'execute'"}}"""));
        });
    }

    [Test]
    public async Task Clients_one_after_another_and_concurrently_all_get_events()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();
        await using (QmpClient first = await QmpClient.ConnectAndNegotiateAsync(_socket))
        {
            await first.ExecuteAsync("cont");
            await first.WaitForEventAsync("RESUME");
        }

        await using QmpClient second = await QmpClient.ConnectAndNegotiateAsync(_socket);
        await using QmpClient third = await QmpClient.ConnectAndNegotiateAsync(_socket);
        await using QmpClient unnegotiated = await QmpClient.ConnectAsync(_socket);

        await second.ExecuteAsync("stop");

        await second.WaitForEventAsync("STOP");
        await third.WaitForEventAsync("STOP");
        await third.ExecuteAsync("cont");
        await second.WaitForEventAsync("RESUME");
        await third.WaitForEventAsync("RESUME");
        Assert.That(await StatusAsync(third), Is.EqualTo("running"));
        Assert.That(unnegotiated.Events, Is.Empty, "no event before negotiation");
    }

    [Test]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Socket_file_mode_is_0600()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();

        Assert.That(File.GetUnixFileMode(_socket), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
    }

    [Test]
    public async Task Stale_socket_file_is_replaced()
    {
        await File.WriteAllTextAsync(_socket, "stale");
        MiniVmmProcess vm = MiniVmmProcess.Start("run", "-S", "-qmp", $"unix:{_socket},server=on,wait=off");
        await using (vm)
        {
            await using QmpClient client = await ConnectWhenListeningAsync(vm);
            Assert.That(client.Greeting.ContainsKey("QMP"), Is.True);
        }
    }

    [Test]
    public async Task Pidfile_holds_the_pid_and_is_removed_on_exit()
    {
        string pidFile = _directory.File("vm.pid");
        MiniVmmProcess vm = await MiniVmmProcess.StartWithQmpAsync(_socket, "-S", "-pidfile", pidFile);
        await using (vm)
        {
            await vm.WaitForFileAsync(pidFile);
            Assert.That((await File.ReadAllTextAsync(pidFile)).Trim(), Is.EqualTo(vm.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)));

            await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(_socket);
            await client.ExecuteAsync("quit");
            Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(0), vm.Stderr);
            Assert.That(File.Exists(pidFile), Is.False);
        }
    }

    [Test]
    public async Task Sigterm_exits_cleanly_with_a_shutdown_event()
    {
        MiniVmmProcess vm = await StartPausedAsync();
        await using (vm)
        {
            await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(_socket);

            await vm.SignalAsync("TERM");

            JsonObject shutdown = await client.WaitForEventAsync("SHUTDOWN");
            Assert.That(shutdown["data"]?["reason"]?.GetValue<string>(), Is.EqualTo("host-signal"));
            Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(0), vm.Stderr);
            Assert.That(File.Exists(_socket), Is.False);
        }
    }

    [Test]
    public async Task Query_commands_and_query_version()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();
        await using QmpClient client = await QmpClient.ConnectAndNegotiateAsync(_socket);

        JsonArray commands = (JsonArray)(await client.ExecuteAsync("query-commands"))["return"]!;
        JsonObject version = (JsonObject)(await client.ExecuteAsync("query-version"))["return"]!;

        Assert.That(commands.Select(c => c!["name"]!.GetValue<string>()),
            Is.SupersetOf(new[] { "qmp_capabilities", "query-status", "stop", "cont", "quit", "query-version", "query-commands" }));
        Assert.That(JsonText.Of(version), Is.EqualTo("""{"qemu":{"major":7,"minor":2,"micro":0},"package":"MiniVmm 0.1"}"""));
    }

    [Test]
    public async Task Replies_use_QEMU_spacing_and_crlf()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        using var timeout = new CancellationTokenSource(QmpClient.DefaultTimeout);
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(_socket), timeout.Token);
        await socket.SendAsync("{\"execute\":\"qmp_capabilities\"}\n"u8.ToArray(), System.Net.Sockets.SocketFlags.None, timeout.Token);

        string received = "";
        byte[] buffer = new byte[4096];
        while (!received.Contains("{\"return\": {}}\r\n", StringComparison.Ordinal))
        {
            int n = await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, timeout.Token);
            Assert.That(n, Is.GreaterThan(0), $"connection closed after: {received}");
            received += System.Text.Encoding.UTF8.GetString(buffer, 0, n);
        }

        Assert.That(received, Does.StartWith(
            "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}, \"package\": \"MiniVmm 0.1\"}, \"capabilities\": []}}\r\n"));
    }

    [Test]
    public async Task A_client_that_never_reads_does_not_block_the_vm()
    {
        await using MiniVmmProcess vm = await StartPausedAsync();
        await using QmpClient silent = await QmpClient.ConnectAndNegotiateAsync(_socket);
        using var deaf = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        await deaf.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(_socket));
        await deaf.SendAsync("{\"execute\":\"qmp_capabilities\"}\n"u8.ToArray(), System.Net.Sockets.SocketFlags.None);
        await using QmpClient driver = await QmpClient.ConnectAndNegotiateAsync(_socket);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 1500; i++)
        {
            await driver.ExecuteAsync("cont");
            await driver.ExecuteAsync("stop");
        }

        Assert.That(await StatusAsync(driver), Is.EqualTo("paused"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)));
        await silent.WaitForEventAsync("STOP");
    }

    [Test]
    public async Task Wait_on_starts_the_vm_once_a_client_connects()
    {
        MiniVmmProcess vm = MiniVmmProcess.Start("run", "-qmp", $"unix:{_socket},server=on");
        await using (vm)
        {
            await vm.WaitForFileAsync(_socket);
            await using QmpClient client = await ConnectWhenListeningAsync(vm);
            await client.ExecuteAsync("qmp_capabilities");

            Assert.That(await StatusAsync(client), Is.EqualTo("running"));
        }
    }

    private static async Task<string?> StatusAsync(QmpClient client) =>
        (await client.ExecuteAsync("query-status"))["return"]?["status"]?.GetValue<string>();

    private async Task<QmpClient> ConnectWhenListeningAsync(MiniVmmProcess vm)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await QmpClient.ConnectAsync(_socket);
            }
            catch (System.Net.Sockets.SocketException) when (clock.Elapsed < MiniVmmProcess.DefaultTimeout && !vm.HasExited)
            {
                await Task.Delay(50);
            }
        }
    }
}
