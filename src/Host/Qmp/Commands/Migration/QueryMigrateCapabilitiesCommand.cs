using System.Text.Json.Nodes;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Qmp.Commands.Migration;

/// <summary><c>query-migrate-capabilities</c>: every capability and whether it is on.</summary>
public sealed class QueryMigrateCapabilitiesCommand(MigrationCoordinator migration) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "query-migrate-capabilities";

    /// <inheritdoc/>
    public bool RequiresBigLock => false;

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        MigrationCapabilities capabilities = migration.Capabilities;
        return new JsonArray(
        [
            .. MigrationCapabilities.Known.Select(name => (JsonNode)new JsonObject
            {
                ["state"] = capabilities.IsEnabled(name),
                ["capability"] = name,
            }),
        ]);
    }
}
