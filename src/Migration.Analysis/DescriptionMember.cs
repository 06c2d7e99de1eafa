using System.Text.Json.Nodes;

namespace MiniVmm.Migration.Analysis;

/// <summary>Typed access to members of vmdesc JSON objects, which come from the stream and are not trusted.</summary>
internal static class DescriptionMember
{
    /// <summary>Reads an integral JSON number.</summary>
    public static bool TryGetInteger(JsonNode? node, out long value)
    {
        value = 0;
        return node is JsonValue json && json.TryGetValue(out value);
    }

    /// <summary>The string member <paramref name="name"/>, or null when absent or not a string.</summary>
    public static string? GetString(JsonObject owner, string name) =>
        owner[name] is JsonValue json && json.TryGetValue(out string? value) ? value : null;

    /// <summary>The integer member <paramref name="name"/>, or null when absent; throws when present but not an integer.</summary>
    public static long? GetInteger(JsonObject owner, string name, string where, long errorOffset)
    {
        JsonNode? node = owner[name];
        if (node is null)
        {
            return null;
        }

        return TryGetInteger(node, out long value)
            ? value
            : throw new StreamAnalysisException($"vmdesc: \"{name}\" of {where} is {node.ToJsonString()}, not an integer", errorOffset);
    }
}
