using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp.Protocol;

/// <summary>
/// Writes JSON the way QEMU's monitor prints it on one line: <c>", "</c> between members,
/// <c>": "</c> after names, so that scripts matching QEMU's output text match ours too.
/// </summary>
public static class QmpJsonWriter
{
    private static readonly JsonSerializerOptions StringOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The JSON text of <paramref name="node"/>.</summary>
    public static string ToText(JsonNode? node)
    {
        var text = new StringBuilder();
        Append(text, node);
        return text.ToString();
    }

    /// <summary>One QMP message on the wire: the JSON text and CR LF, as UTF-8.</summary>
    public static byte[] ToWireMessage(JsonNode node) => Encoding.UTF8.GetBytes(ToText(node) + "\r\n");

    private static void Append(StringBuilder text, JsonNode? node)
    {
        switch (node)
        {
            case null:
                text.Append("null");
                break;
            case JsonObject obj:
                text.Append('{');
                bool firstMember = true;
                foreach (KeyValuePair<string, JsonNode?> member in obj)
                {
                    if (!firstMember)
                    {
                        text.Append(", ");
                    }

                    firstMember = false;
                    AppendString(text, member.Key);
                    text.Append(": ");
                    Append(text, member.Value);
                }

                text.Append('}');
                break;
            case JsonArray array:
                text.Append('[');
                for (int i = 0; i < array.Count; i++)
                {
                    if (i > 0)
                    {
                        text.Append(", ");
                    }

                    Append(text, array[i]);
                }

                text.Append(']');
                break;
            default:
                if (node.GetValueKind() == JsonValueKind.String)
                {
                    AppendString(text, node.GetValue<string>());
                }
                else
                {
                    text.Append(node.ToJsonString(StringOptions));
                }

                break;
        }
    }

    private static void AppendString(StringBuilder text, string value) =>
        text.Append(JsonSerializer.Serialize(value, StringOptions));
}
