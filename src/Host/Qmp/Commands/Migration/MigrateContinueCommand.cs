using System.Text.Json.Nodes;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Qmp.Commands.Migration;

/// <summary><c>migrate-continue {state}</c>: resumes a migration paused in <c>pre-switchover</c>.</summary>
public sealed class MigrateContinueCommand(MigrationCoordinator migration) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "migrate-continue";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("state", QmpParameterType.String)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        string state = arguments["state"]!.GetValue<string>();
        if (!MigrationStatusNames.TryParse(state, out MigrationStatus expected))
        {
            throw new QmpException($"Parameter 'state' does not accept value '{state}'");
        }

        try
        {
            (migration.Outgoing ?? throw new InvalidOperationException("Migration not in expected state: none")).Continue(expected);
        }
        catch (InvalidOperationException error)
        {
            throw new QmpException(error.Message);
        }

        return null;
    }
}
