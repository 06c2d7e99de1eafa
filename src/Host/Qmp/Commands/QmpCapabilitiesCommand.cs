using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary>
/// <c>qmp_capabilities</c>: ends capabilities negotiation. No optional capability (such as
/// <c>oob</c>) is offered, so <c>enable</c> may only be empty.
/// </summary>
public sealed class QmpCapabilitiesCommand : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "qmp_capabilities";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("enable", QmpParameterType.Array, Optional: true)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        if (context.Session.IsNegotiated)
        {
            throw new QmpException(QmpErrorClass.CommandNotFound, "Capabilities negotiation is already complete, command ignored");
        }

        if (arguments["enable"] is JsonArray { Count: > 0 } enable)
        {
            JsonNode? capability = enable[0];
            if (capability?.GetValueKind() != JsonValueKind.String)
            {
                throw new QmpException("Invalid parameter type for 'enable[0]', expected: string");
            }

            string name = capability.GetValue<string>();
            throw name == "oob"
                ? new QmpException($"Capability '{name}' not available")
                : new QmpException($"Parameter 'enable[0]' does not accept value '{name}'");
        }

        context.Session.CompleteNegotiation();
        return null;
    }
}
