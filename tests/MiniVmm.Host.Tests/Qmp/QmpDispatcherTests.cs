using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Host.Hosting;
using MiniVmm.Host.Qmp;
using MiniVmm.Host.Qmp.Commands;
using MiniVmm.Host.Qmp.Protocol;
using MiniVmm.Runstate;

using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.Qmp;

[TestFixture]
public sealed class QmpDispatcherTests
{
    private VirtualMachine _vm = null!;
    private ShutdownLatch _shutdown = null!;
    private QmpDispatcher _dispatcher = null!;
    private QmpSession _session = null!;

    [SetUp]
    public void CreateDispatcher()
    {
        _vm = new VirtualMachine();
        _shutdown = new ShutdownLatch();
        var registry = new QmpCommandRegistry(
        [
            new QmpCapabilitiesCommand(), new QueryStatusCommand(), new StopCommand(), new ContCommand(),
            new QuitCommand(_shutdown), new QueryVersionCommand(), new QueryCommandsCommand(),
            new EchoCommand(), new ThrowingCommand(),
        ]);
        _dispatcher = new QmpDispatcher(_vm, registry, NullLogger<QmpDispatcher>.Instance);
        _session = new QmpSession();
    }

    private JsonObject Send(string json)
    {
        var output = new List<QmpInput>();
        new QmpInputFramer().Feed(System.Text.Encoding.UTF8.GetBytes(json + "\n"), output);
        return _dispatcher.Dispatch(output.Single(), _session).Reply;
    }

    private void Negotiate() => Assert.That(Send("""{"execute":"qmp_capabilities"}""").ContainsKey("return"), Is.True);

    private static string? ErrorDesc(JsonObject reply) => (string?)reply["error"]?["desc"];

    [Test]
    public void Request_shape_errors_use_QEMU_messages()
    {
        Negotiate();

        Assert.Multiple(() =>
        {
            Assert.That(ErrorDesc(Send("""{"execute": 1}""")), Is.EqualTo("QMP input member 'execute' must be a string"));
            Assert.That(ErrorDesc(Send("""{"execute": "query-status", "arguments": []}""")), Is.EqualTo("QMP input member 'arguments' must be an object"));
            Assert.That(ErrorDesc(Send("""{"execute": "query-status", "extra": 1}""")), Is.EqualTo("QMP input member 'extra' is unexpected"));
            Assert.That(ErrorDesc(Send("""{"id": 5}""")), Is.EqualTo("QMP input lacks member 'execute'"));
            Assert.That(ErrorDesc(Send("""null""")), Is.EqualTo("QMP input must be a JSON object"));
        });
    }

    [Test]
    public void Arguments_are_checked_against_the_parameters()
    {
        Negotiate();

        Assert.Multiple(() =>
        {
            Assert.That(ErrorDesc(Send("""{"execute": "echo"}""")), Is.EqualTo("Parameter 'text' is missing"));
            Assert.That(ErrorDesc(Send("""{"execute": "echo", "arguments": {"text": 3}}""")), Is.EqualTo("Invalid parameter type for 'text', expected: string"));
            Assert.That(ErrorDesc(Send("""{"execute": "echo", "arguments": {"text": "a", "count": 1.5}}""")), Is.EqualTo("Invalid parameter type for 'count', expected: integer"));
            Assert.That(ErrorDesc(Send("""{"execute": "echo", "arguments": {"text": "a", "bogus": 1}}""")), Is.EqualTo("Parameter 'bogus' is unexpected"));
            Assert.That(ErrorDesc(Send("""{"execute": "query-status", "arguments": {"x": 1}}""")), Is.EqualTo("Parameter 'x' is unexpected"));
            Assert.That(JsonText.Of(Send("""{"execute": "echo", "arguments": {"text": "hi", "count": 2}, "id": 9}""")),
                Is.EqualTo("""{"return":{"text":"hi","count":2},"id":9}"""));
        });
    }

    [Test]
    public void A_command_that_throws_becomes_a_GenericError()
    {
        Negotiate();

        JsonObject reply = Send("""{"execute": "throw", "id": "t"}""");

        Assert.That(JsonText.Of(reply), Is.EqualTo("""{"error":{"class":"GenericError","desc":"boom"},"id":"t"}"""));
        Assert.That(_vm.Bql.IsHeld, Is.False);
    }

    [Test]
    public void Commands_run_with_the_big_lock_held()
    {
        Negotiate();

        Assert.That((bool?)Send("""{"execute": "echo", "arguments": {"text": "x"}}""")["return"]?["locked"], Is.True);
    }

    [Test]
    public void Unknown_commands_during_negotiation_get_the_negotiation_message()
    {
        Assert.That(JsonText.Of(Send("""{"execute": "frobnicate"}""")), Is.EqualTo(
            """{"error":{"class":"CommandNotFound","desc":"Expecting capabilities negotiation with 'qmp_capabilities'"}}"""));
    }

    [Test]
    public void Capabilities_cannot_enable_oob()
    {
        Assert.That(ErrorDesc(Send("""{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}""")), Is.EqualTo("Capability 'oob' not available"));
        Assert.That(_session.IsNegotiated, Is.False);
    }

    [Test]
    public void Cont_and_stop_follow_QEMU_rules()
    {
        Negotiate();
        using (_vm.Bql.Acquire())
        {
            _vm.SetRunState(RunState.InMigrate);
        }

        Send("""{"execute": "stop"}""");
        Assert.That(_vm.Autostart, Is.False, "stop during inmigrate clears autostart");
        Send("""{"execute": "cont"}""");
        Assert.That(_vm.Autostart, Is.True, "cont during inmigrate sets autostart");
        Assert.That(_vm.State, Is.EqualTo(RunState.InMigrate));

        using (_vm.Bql.Acquire())
        {
            _vm.SetRunState(RunState.FinishMigrate);
        }

        Assert.That(ErrorDesc(Send("""{"execute": "cont"}""")), Is.EqualTo("Migration is not finalized yet"));
    }

    [Test]
    public void Cont_refuses_when_a_reset_is_needed()
    {
        Negotiate();
        using (_vm.Bql.Acquire())
        {
            _vm.Start();
            _vm.Stop(RunState.Shutdown);
        }

        Assert.That(ErrorDesc(Send("""{"execute": "cont"}""")), Is.EqualTo("Resetting the Virtual Machine is required"));
    }

    [Test]
    public void Quit_requests_shutdown_only_after_the_reply()
    {
        Negotiate();
        var output = new List<QmpInput>();
        new QmpInputFramer().Feed("{\"execute\":\"quit\"}"u8, output);

        QmpDispatchResult result = _dispatcher.Dispatch(output.Single(), _session);

        Assert.That(_shutdown.IsRequested, Is.False);
        foreach (Action after in result.AfterReply)
        {
            after();
        }

        Assert.That(_shutdown.Requested.Result, Is.EqualTo(ShutdownCause.HostQmpQuit));
    }

    [Test]
    public void Json_writer_spaces_like_QEMU()
    {
        JsonObject reply = QmpMessages.Return(new JsonObject { ["a"] = new JsonArray(1, "x/<y>"), ["b"] = null }, id: 3);

        Assert.That(QmpJsonWriter.ToText(reply), Is.EqualTo("""{"return": {"a": [1, "x/<y>"], "b": null}, "id": 3}"""));
    }

    private sealed class EchoCommand : IQmpCommand
    {
        public string Name => "echo";

        public IReadOnlyList<QmpParameter> Parameters { get; } =
            [new("text", QmpParameterType.String), new("count", QmpParameterType.Integer, Optional: true)];

        public JsonNode? Execute(JsonObject arguments, QmpContext context)
        {
            JsonObject result = arguments.DeepClone().AsObject();
            if (!result.ContainsKey("count"))
            {
                result["locked"] = context.Vm.Bql.IsHeld;
            }

            return result;
        }
    }

    private sealed class ThrowingCommand : IQmpCommand
    {
        public string Name => "throw";

        public JsonNode? Execute(JsonObject arguments, QmpContext context) => throw new InvalidOperationException("boom");
    }
}
