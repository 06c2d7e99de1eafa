using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Tests.Support;

/// <summary>Compact JSON text for assertions, without escaping quotes or non-ASCII letters.</summary>
public static class JsonText
{
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The compact text of <paramref name="node"/>.</summary>
    public static string Of(JsonNode? node) => node?.ToJsonString(Relaxed) ?? "null";
}
