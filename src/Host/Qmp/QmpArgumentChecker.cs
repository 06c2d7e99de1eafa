using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp;

/// <summary>
/// Checks a command's <c>arguments</c> against its parameters the way QEMU's input visitor
/// does, with QEMU's messages: missing, unexpected and mistyped parameters.
/// </summary>
public static class QmpArgumentChecker
{
    /// <summary>Throws a <see cref="QmpException"/> naming the first parameter that is wrong.</summary>
    public static void Check(IReadOnlyList<QmpParameter> parameters, JsonObject arguments)
    {
        foreach (QmpParameter parameter in parameters)
        {
            if (!arguments.TryGetPropertyValue(parameter.Name, out JsonNode? value))
            {
                if (!parameter.Optional)
                {
                    throw new QmpException($"Parameter '{parameter.Name}' is missing");
                }

                continue;
            }

            if (!HasType(value, parameter.Type))
            {
                throw new QmpException(
                    $"Invalid parameter type for '{parameter.Name}', expected: {parameter.TypeName}");
            }
        }

        foreach (KeyValuePair<string, JsonNode?> member in arguments)
        {
            if (!parameters.Any(p => p.Name == member.Key))
            {
                throw new QmpException($"Parameter '{member.Key}' is unexpected");
            }
        }
    }

    private static bool HasType(JsonNode? value, QmpParameterType type) => type switch
    {
        QmpParameterType.Any => true,
        QmpParameterType.Object => value is JsonObject,
        QmpParameterType.Array => value is JsonArray,
        QmpParameterType.String => KindOf(value) == JsonValueKind.String,
        QmpParameterType.Boolean => KindOf(value) is JsonValueKind.True or JsonValueKind.False,
        QmpParameterType.Number => KindOf(value) == JsonValueKind.Number,
        QmpParameterType.Integer => KindOf(value) == JsonValueKind.Number && IsInteger((JsonValue)value!),
        _ => false,
    };

    private static JsonValueKind KindOf(JsonNode? value) => value?.GetValueKind() ?? JsonValueKind.Null;

    private static bool IsInteger(JsonValue value) =>
        value.TryGetValue(out long _) || value.TryGetValue(out ulong _);
}
