using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp.Protocol;

/// <summary>
/// One message read from a QMP client: a parsed JSON value (possibly JSON <c>null</c>), or the
/// reason the bytes were not valid JSON.
/// </summary>
public readonly record struct QmpInput(JsonNode? Value, string? ParseError)
{
    /// <summary>Whether the bytes could not be parsed.</summary>
    public bool IsParseError => ParseError is not null;

    /// <summary>A well-formed value.</summary>
    public static QmpInput Parsed(JsonNode? value) => new(value, null);

    /// <summary>Malformed input.</summary>
    public static QmpInput Malformed(string error) => new(null, error);
}
