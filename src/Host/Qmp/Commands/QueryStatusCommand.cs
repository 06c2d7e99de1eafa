using System.Text.Json.Nodes;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>query-status</c>: the run state, as QEMU 7.2 reports it (with the old <c>singlestep</c> member).</summary>
public sealed class QueryStatusCommand : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "query-status";

    /// <inheritdoc/>
    public bool RequiresBigLock => false;

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        RunState state = context.Vm.State;
        return new JsonObject
        {
            ["status"] = state.ToQapiName(),
            ["singlestep"] = false,
            ["running"] = state == RunState.Running,
        };
    }
}
