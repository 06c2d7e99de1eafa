using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>query-commands</c>: the name of every registered command.</summary>
public sealed class QueryCommandsCommand : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "query-commands";

    /// <inheritdoc/>
    public bool RequiresBigLock => false;

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context) =>
        new JsonArray([.. context.Commands.Names.Select(name => (JsonNode)new JsonObject { ["name"] = name })]);
}
