using System.Text.Json.Nodes;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Qmp.Commands.Migration;

/// <summary><c>migrate-set-parameters</c>: changes parameters (all or nothing); a running migration sees them at once.</summary>
public sealed class MigrateSetParametersCommand(MigrationCoordinator migration) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "migrate-set-parameters";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } =
    [
        .. MigrationParameterNames.All.Select(name => new QmpParameter(
            name,
            MigrationParameterNames.IsBoolean(name) ? QmpParameterType.Boolean
                // StrOrNull: a string, or null for "" (checked by MigrationParameterNames).
                : MigrationParameterNames.IsString(name) ? QmpParameterType.Any
                : QmpParameterType.Integer,
            Optional: true)),
    ];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        try
        {
            migration.SetParameters(arguments);
        }
        catch (ArgumentException error)
        {
            throw new QmpException(error.Message);
        }

        return null;
    }
}
