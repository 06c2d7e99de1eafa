using System.Text.Json.Nodes;
using MiniVmm.Host.CommandLine;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Qmp.Commands.Migration;

/// <summary><c>migrate-incoming {uri}</c>: starts the incoming side of a VM started with <c>-incoming defer</c>.</summary>
public sealed class MigrateIncomingCommand(MigrationCoordinator migration, VmOptions options) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "migrate-incoming";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("uri", QmpParameterType.String)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        if (options.Incoming != "defer")
        {
            throw new QmpException("For use with '-incoming defer'");
        }

        try
        {
            migration.StartIncoming(arguments["uri"]!.GetValue<string>());
        }
        catch (Exception error) when (error is MigrationBlockedException or ArgumentException or IOException)
        {
            throw new QmpException(error.Message);
        }

        return null;
    }
}
