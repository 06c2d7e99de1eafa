using System.Text.Json.Nodes;
using MiniVmm.Host.Objects;
using MiniVmm.Migration.Transport.Tls;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>object-del {id}</c>: removes an object made with <c>-object</c> or <c>object-add</c>.</summary>
public sealed class ObjectDelCommand(TlsObjectTable objects) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "object-del";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("id", QmpParameterType.String)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        try
        {
            objects.Remove(arguments["id"]!.GetValue<string>());
        }
        catch (TlsCredentialsException error)
        {
            throw new QmpException(error.Message);
        }

        return null;
    }
}
