using System.Text.Json.Nodes;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Qmp.Commands.Migration;

/// <summary><c>query-migrate</c>: the status and statistics of the outgoing or incoming migration.</summary>
public sealed class QueryMigrateCommand(MigrationCoordinator migration) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "query-migrate";

    /// <inheritdoc/>
    public bool RequiresBigLock => false;

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        JsonObject info = migration.Query().ToJson();
        if (migration.BlockedReasons is { Count: > 0 } reasons && info.Count > 0)
        {
            info["blocked-reasons"] = new JsonArray([.. reasons.Select(r => (JsonNode)r)]);
        }

        return info;
    }
}
