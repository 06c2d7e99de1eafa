using System.Text.Json.Nodes;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Qmp.Commands.Migration;

/// <summary><c>migrate_cancel</c>: cancels the outgoing migration; succeeds when there is none (as 7.2).</summary>
public sealed class MigrateCancelCommand(MigrationCoordinator migration) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "migrate_cancel";

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        migration.Cancel();
        return null;
    }
}
