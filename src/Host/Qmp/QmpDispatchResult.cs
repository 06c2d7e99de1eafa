using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp;

/// <summary>The reply to one QMP message and what must happen once it is queued to the client.</summary>
public sealed record QmpDispatchResult(JsonObject Reply, IReadOnlyList<Action> AfterReply)
{
    /// <summary>A reply with nothing to do after it.</summary>
    public static QmpDispatchResult Of(JsonObject reply) => new(reply, []);
}
