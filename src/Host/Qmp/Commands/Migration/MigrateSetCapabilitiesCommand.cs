using System.Text.Json.Nodes;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Qmp.Commands.Migration;

/// <summary><c>migrate-set-capabilities {capabilities: [{capability, state}]}</c>; refused while a migration runs.</summary>
public sealed class MigrateSetCapabilitiesCommand(MigrationCoordinator migration) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "migrate-set-capabilities";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("capabilities", QmpParameterType.Array)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        var changes = new List<(string, bool)>();
        foreach (JsonNode? item in arguments["capabilities"]!.AsArray())
        {
            if (item is not JsonObject entry
                || entry["capability"] is not JsonValue name || !name.TryGetValue(out string? capability)
                || entry["state"] is not JsonValue state || !state.TryGetValue(out bool on))
            {
                throw new QmpException("Invalid parameter type for 'capabilities', expected: array of {capability: string, state: boolean}");
            }

            changes.Add((capability, on));
        }

        try
        {
            migration.SetCapabilities(changes);
        }
        catch (Exception error) when (error is ArgumentException or MigrationBlockedException)
        {
            throw new QmpException(error.Message);
        }

        return null;
    }
}
