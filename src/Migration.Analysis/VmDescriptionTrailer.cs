using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// The VMDESCRIPTION element after EOF: type byte 0x06, a be32 length, then that many bytes of
/// JSON describing the FULL sections' fields.
/// </summary>
public sealed class VmDescriptionTrailer
{
    /// <summary>The type byte, the length field: the bytes before the JSON.</summary>
    public const int HeaderSize = 5;

    /// <summary>The largest JSON accepted (QEMU's are a few hundred KiB at most).</summary>
    public const int MaxJsonLength = 64 * 1024 * 1024;

    // Nesting allowed in the JSON: deep enough for any device, shallow enough for recursion.
    private const int MaxJsonDepth = 256;

    private readonly Dictionary<(string Name, long InstanceId), JsonObject> _devices;

    private VmDescriptionTrailer(long offset, uint length, JsonObject root, int? pageSize, Dictionary<(string, long), JsonObject> devices)
    {
        Offset = offset;
        Length = length;
        Root = root;
        PageSize = pageSize;
        _devices = devices;
    }

    /// <summary>Offset of the 0x06 type byte.</summary>
    public long Offset { get; }

    /// <summary>Length of the JSON in bytes.</summary>
    public uint Length { get; }

    /// <summary>Offset of the first JSON byte.</summary>
    public long JsonOffset => Offset + HeaderSize;

    /// <summary>The parsed JSON.</summary>
    public JsonObject Root { get; }

    /// <summary>The "page_size" member, when present.</summary>
    public int? PageSize { get; }

    /// <summary>The "devices" entry for a FULL section's idstr and instance, or null.</summary>
    public JsonObject? FindDevice(string name, long instanceId) =>
        _devices.GetValueOrDefault((name, instanceId));

    /// <summary>
    /// Parses the JSON of a trailer whose type byte is at <paramref name="offset"/>. Throws
    /// <see cref="StreamAnalysisException"/> with the offset of the bad JSON byte when it is not a
    /// JSON object with a "devices" array of objects carrying "name" and "instance_id".
    /// </summary>
    public static VmDescriptionTrailer Parse(long offset, ReadOnlySpan<byte> json)
    {
        long jsonOffset = offset + HeaderSize;
        int invalid = FirstInvalidUtf8(json);
        if (invalid >= 0)
        {
            throw new StreamAnalysisException("vmdesc is not valid UTF-8", jsonOffset + invalid);
        }

        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = MaxJsonDepth });
            Materialize(node);
        }
        catch (JsonException ex)
        {
            long at = ex.LineNumber == 0 && ex.BytePositionInLine is { } column ? jsonOffset + column : jsonOffset;
            throw new StreamAnalysisException($"vmdesc is not valid JSON: {ex.Message}", at);
        }
        catch (InvalidOperationException ex)
        {
            throw new StreamAnalysisException($"vmdesc holds a string that cannot be decoded: {ex.Message}", jsonOffset);
        }

        if (node is not JsonObject root)
        {
            throw new StreamAnalysisException("vmdesc JSON is not an object", jsonOffset);
        }

        int? pageSize = null;
        if (root["page_size"] is { } pageNode)
        {
            if (!DescriptionMember.TryGetInteger(pageNode, out long page) || page < 512 || page > 1 << 20 || (page & (page - 1)) != 0)
            {
                throw new StreamAnalysisException($"vmdesc page_size {pageNode.ToJsonString()} is not a power of two from 512 to 1 MiB", jsonOffset);
            }

            pageSize = (int)page;
        }

        if (root["devices"] is not JsonArray devices)
        {
            throw new StreamAnalysisException("vmdesc JSON has no \"devices\" array", jsonOffset);
        }

        var byKey = new Dictionary<(string, long), JsonObject>();
        foreach (JsonNode? entry in devices)
        {
            if (entry is not JsonObject device
                || device["name"] is not JsonValue nameNode || !nameNode.TryGetValue(out string? name)
                || device["instance_id"] is not { } instanceNode || !DescriptionMember.TryGetInteger(instanceNode, out long instance))
            {
                throw new StreamAnalysisException(
                    $"vmdesc device entry {entry?.ToJsonString() ?? "null"} lacks a string \"name\" or an integer \"instance_id\"", jsonOffset);
            }

            byKey.TryAdd((name, instance), device);
        }

        return new VmDescriptionTrailer(offset, (uint)json.Length, root, pageSize, byKey);
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int at = 0;
        while (at < bytes.Length)
        {
            if (Rune.DecodeFromUtf8(bytes[at..], out _, out int consumed) != OperationStatus.Done)
            {
                return at;
            }

            at += consumed;
        }

        return -1;
    }

    // JsonNode decodes names and strings lazily; touching every one here makes a bad escape
    // (such as a lone surrogate) fail now, inside Parse, instead of while decoding a section.
    private static void Materialize(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (KeyValuePair<string, JsonNode?> member in obj)
                {
                    Materialize(member.Value);
                }

                break;
            case JsonArray array:
                foreach (JsonNode? element in array)
                {
                    Materialize(element);
                }

                break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                _ = value.GetValue<string>();
                break;
        }
    }
}
