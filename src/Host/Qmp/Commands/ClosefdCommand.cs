using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>closefd {fdname}</c>: closes a file descriptor kept by <c>getfd</c>.</summary>
public sealed class ClosefdCommand(PassedDescriptorTable table) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "closefd";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("fdname", QmpParameterType.String)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        string name = arguments["fdname"]!.GetValue<string>();
        if (!table.Close(name))
        {
            throw new QmpException($"File descriptor named '{name}' not found");
        }

        return null;
    }
}
