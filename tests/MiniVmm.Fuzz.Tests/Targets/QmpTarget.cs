using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.Host.Qmp;
using MiniVmm.Host.Qmp.Protocol;

namespace MiniVmm.Fuzz.Tests.Targets;

/// <summary>
/// A QMP client's bytes through the input framer (in chunks cut where the case's own random
/// generator says, as reads from a socket would cut them) and every value through the
/// dispatcher of a fresh machine, as <c>QmpConnection</c> does. Framing and dispatch must never
/// throw; every reply must be one object with exactly one of <c>return</c> and <c>error</c> and
/// must serialise for the wire; and nothing a command caught and logged may be a runtime fault.
/// A case counts as rejected when the framer found malformed JSON in it.
/// </summary>
/// <remarks>
/// The commands whose effects leave the process are not registered here: <c>migrate</c> and
/// <c>migrate-incoming</c> (they connect, listen, open files or run <c>exec:</c> commands with
/// /bin/sh), <c>pmemsave</c> (writes a file wherever it is told), <c>calc-dirty-rate</c> (a
/// measurement that outlives the case). The QMP client is trusted with those; its bytes are
/// still checked by the framer and the dispatcher, which this target covers.
/// </remarks>
internal sealed class QmpTarget(string socketDirectory) : IFuzzTarget
{
    private static readonly HashSet<string> Excluded = ["migrate", "migrate-incoming", "pmemsave", "calc-dirty-rate"];

    private static readonly string[] Scripts =
    [
        """
        {"execute": "qmp_capabilities"}
        {"execute": "query-status", "id": 1}
        {"execute": "stop"}
        {"execute": "cont", "id": "two"}
        {"execute": "query-version"}
        {"execute": "query-commands"}
        """,
        """
        {"execute": "qmp_capabilities", "arguments": {"enable": []}}
        {"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 1048576, "downtime-limit": 300, "cpu-throttle-initial": 20, "cpu-throttle-increment": 10, "max-cpu-throttle": 99, "cpu-throttle-tailslow": true}}
        {"execute": "query-migrate-parameters", "id": {"nested": [1, 2.5, null]}}
        {"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true}, {"capability": "return-path", "state": true}, {"capability": "switchover-ack", "state": true}]}}
        {"execute": "query-migrate-capabilities"}
        {"execute": "query-migrate"}
        """,
        """
        {"execute":"qmp_capabilities"}{"execute":"x-query-sample","arguments":{"id":"s0"}}
        {"execute":"x-query-vfio","arguments":{"id":"v0"}}{"execute":"query-dirty-rate"}
        {"execute":"x-check-guest-memory"}
        {"execute":"getfd","arguments":{"fdname":"f"}}
        {"execute":"closefd","arguments":{"fdname":"f"}}
        {"execute":"migrate_cancel"}
        {"execute":"migrate-continue","arguments":{"state":"pre-switchover"}}
        {"execute":"quit"}
        """,
        """
        {"execute": "qmp_capabilities"}
        {"execute": "query-status", "arguments": {}, "id": [1, {"a": "\u00e9\ud83d\ude00"}]}
        {"exec-oob": "query-status"}
        {"execute": "no-such-command"}
        [1, 2, 3]
        "text"
        {"execute": "stop", "arguments": {"unexpected": 1}}
        {"execute": "query-status"
        """,
    ];

    private readonly CapturingLoggerProvider _logs = new();

    public string Name => "qmp";

    public IReadOnlyList<FuzzSeed> Seeds { get; } = [.. Scripts.Select((s, i) => Seed($"qmp-script-{i}", s))];

    public bool BigEndianLengths => true;

    public TimeSpan CaseTimeout => TimeSpan.FromSeconds(10);

    public string? LastRejection { get; private set; }

    public CaseOutcome Run(byte[] input)
    {
        LastRejection = null;
        _logs.Clear();
        using FuzzMachine machine = FuzzMachine.Create(new MachineShape(2 << 20, SampleSeed: 3, Vfio: false, Harness: false), socketDirectory, _logs);
        var registry = new QmpCommandRegistry(machine.Services.GetServices<IQmpCommand>().Where(c => !Excluded.Contains(c.Name)));
        var dispatcher = new QmpDispatcher(machine.Vm, registry, machine.Services.GetRequiredService<ILogger<QmpDispatcher>>());
        var session = new QmpSession();
        var framer = new QmpInputFramer(input.Length % 3 == 0 ? 256 : QmpInputFramer.DefaultMaxMessageBytes);
        var inputs = new List<QmpInput>();
        var cuts = new FuzzRandom((ulong)input.Length * 0x9e3779b97f4a7c15 ^ (input.Length > 0 ? input[^1] : 0UL));
        bool malformed = false;
        int at = 0;
        while (at < input.Length)
        {
            int chunk = Math.Min(input.Length - at, cuts.OneIn(3) ? cuts.Next(1, 16) : cuts.Next(1, 4096));
            inputs.Clear();
            framer.Feed(input.AsSpan(at, chunk), inputs);
            at += chunk;
            foreach (QmpInput value in inputs)
            {
                QmpDispatchResult result = dispatcher.Dispatch(value, session);
                CheckReply(result.Reply);
                malformed |= value.IsParseError;
                LastRejection ??= value.ParseError;
                foreach (Action after in result.AfterReply)
                {
                    after();
                }
            }
        }

        foreach ((string category, string message, Exception error) in _logs.Errors)
        {
            if (ErrorRules.FindFault(error) is { } fault)
            {
                throw new FuzzFinding(
                    $"{category} logged a runtime fault ({fault.GetType().Name}) while answering: {message}: {ErrorRules.Describe(error)}", error);
            }
        }

        return malformed ? CaseOutcome.Rejected : CaseOutcome.Accepted;
    }

    public void Dispose() => _logs.Dispose();

    private static void CheckReply(JsonObject reply)
    {
        bool hasReturn = reply.ContainsKey("return");
        bool hasError = reply.ContainsKey("error");
        if (hasReturn == hasError)
        {
            throw new FuzzFinding($"a reply has {(hasReturn ? "both return and error" : "neither return nor error")}: {reply.ToJsonString()}");
        }

        byte[] wire = QmpJsonWriter.ToWireMessage(reply);
        if (wire.Length < 2 || wire[^2] != '\r' || wire[^1] != '\n')
        {
            throw new FuzzFinding("a reply does not end in CR LF on the wire");
        }
    }

    private static FuzzSeed Seed(string name, string script)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(script.ReplaceLineEndings("\n") + "\n");
        int[] spots = [.. Enumerable.Range(0, bytes.Length).Where(i => bytes[i] is (byte)'{' or (byte)'"' or (byte)':' or (byte)'[')];
        return new FuzzSeed(name, bytes, spots);
    }
}
