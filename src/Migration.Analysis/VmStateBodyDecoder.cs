using System.Collections.Frozen;
using System.Text.Json.Nodes;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// Decodes the body of a FULL section field by field, guided by the section's entry in the
/// vmdesc: each field's type and size (bytes on the wire per element), <c>array_len</c> for
/// arrays described once, <c>index</c> for arrays described per element, nested <c>struct</c>
/// descriptions, and the <c>subsections</c> that were sent, in order. Sizes and counts come
/// from the stream, so they are checked against the bytes left before anything is read, and
/// only the first bytes/elements of large values are kept for display.
/// </summary>
internal sealed class VmStateBodyDecoder
{
    /// <summary>Bytes of a buffer value shown; the rest is skipped.</summary>
    public const int MaxShownBytes = 256;

    /// <summary>Elements of an array shown; the rest are decoded but not kept.</summary>
    public const int MaxShownElements = 1024;

    // Arrays of elements without a size cannot be checked against the stream length.
    private const long MaxUnsizedElements = 1 << 20;

    /// <summary>
    /// Values that take no stream bytes (empty structs, zero-size fields) one section may hold.
    /// Every other value consumes at least one byte, so with this budget the work is bounded by
    /// the stream's length: without it, a vmdesc nesting arrays of empty structs makes a
    /// 200-byte stream take forever.
    /// </summary>
    public const int MaxEmptyValues = 1 << 16;

    private const byte NullPointerMarker = 0x30;
    private const byte SubsectionMarker = 0x05;

    private static readonly FrozenSet<string> SignedIntegerTypes = FrozenSet.Create(
        StringComparer.Ordinal, "int8", "int16", "int32", "int64", "int32 equal", "int64 equal", "int32 le");

    private static readonly FrozenSet<string> UnsignedIntegerTypes = FrozenSet.Create(
        StringComparer.Ordinal, "uint8", "uint16", "uint32", "uint64", "uint8 equal", "uint16 equal", "uint32 equal", "uint64 equal");

    private readonly MigrationStreamReader _reader;
    private readonly long _streamLength;
    private int _emptyValues;

    public VmStateBodyDecoder(MigrationStreamReader reader, long streamLength)
    {
        _reader = reader;
        _streamLength = streamLength;
    }

    /// <summary>
    /// Reads one device's state as <paramref name="device"/> (a vmdesc "devices" entry)
    /// describes it and returns <c>{vmsd_name, version, fields: [...], subsections: [...]}</c>.
    /// </summary>
    public JsonObject DecodeDevice(JsonObject device, string where)
    {
        var result = new JsonObject();
        DecodeStructInto(result, device, where);
        return result;
    }

    private void DecodeStructInto(JsonObject result, JsonObject description, string where)
    {
        if (DescriptionMember.GetString(description, "vmsd_name") is { } vmsdName)
        {
            result["vmsd_name"] = vmsdName;
        }

        if (DescriptionMember.GetInteger(description, "version", where, _reader.Offset) is { } version)
        {
            result["version"] = version;
        }

        if (description["fields"] is not JsonArray fields)
        {
            throw new StreamAnalysisException($"vmdesc entry for {where} has no \"fields\" array", _reader.Offset);
        }

        var decodedFields = new JsonArray();
        foreach (JsonNode? field in fields)
        {
            if (field is not JsonObject fieldDescription)
            {
                throw new StreamAnalysisException($"vmdesc entry for {where} has a field that is not an object", _reader.Offset);
            }

            decodedFields.Add(DecodeField(fieldDescription, where));
        }

        result["fields"] = decodedFields;

        switch (description["subsections"])
        {
            case null:
                break;
            case JsonArray subsections:
                var decodedSubsections = new JsonArray();
                foreach (JsonNode? subsection in subsections)
                {
                    decodedSubsections.Add(DecodeSubsection(subsection as JsonObject, where));
                }

                result["subsections"] = decodedSubsections;
                break;
            default:
                throw new StreamAnalysisException($"vmdesc entry for {where} has \"subsections\" that is not an array", _reader.Offset);
        }
    }

    private JsonObject DecodeSubsection(JsonObject? description, string where)
    {
        long at = _reader.Offset;
        string expected = description is null ? "?" : DescriptionMember.GetString(description, "vmsd_name") ?? "?";
        if (description is null)
        {
            throw new StreamAnalysisException($"vmdesc entry for {where} has a subsection that is not an object", at);
        }

        byte marker = _reader.GetByte();
        if (marker != SubsectionMarker)
        {
            throw new StreamAnalysisException(
                $"{where}: expected subsection '{expected}' (0x{SubsectionMarker:x2}), found byte 0x{marker:x2}", at);
        }

        string name = _reader.GetCountedString();
        uint version = _reader.GetBe32();
        if (expected != "?" && name != expected)
        {
            throw new StreamAnalysisException($"{where}: expected subsection '{expected}', found '{name}'", at);
        }

        var result = new JsonObject { ["name"] = name, ["offset"] = at, ["stream_version"] = version };
        DecodeStructInto(result, description, name);
        return result;
    }

    private JsonObject DecodeField(JsonObject description, string where)
    {
        long at = _reader.Offset;
        string name = DescriptionMember.GetString(description, "name")
            ?? throw new StreamAnalysisException($"vmdesc entry for {where} has a field without a \"name\"", at);
        string fieldWhere = $"{where}.{name}";
        string type = DescriptionMember.GetString(description, "type") ?? "unknown";
        long? size = DescriptionMember.GetInteger(description, "size", fieldWhere, at);
        long? arrayLength = DescriptionMember.GetInteger(description, "array_len", fieldWhere, at);
        long? index = DescriptionMember.GetInteger(description, "index", fieldWhere, at);
        if (index is { } i)
        {
            fieldWhere += $"[{i}]";
        }

        JsonObject? structDescription = null;
        if (type == "struct")
        {
            structDescription = description["struct"] as JsonObject
                ?? throw new StreamAnalysisException($"vmdesc field {fieldWhere} has type struct but no \"struct\" description", at);
        }
        else if (size is null && type != "capability")
        {
            throw new StreamAnalysisException($"vmdesc field {fieldWhere} has no \"size\"", at);
        }

        if (size < 0 || arrayLength < 0)
        {
            throw new StreamAnalysisException($"vmdesc field {fieldWhere} has a negative size or array_len", at);
        }

        var result = new JsonObject { ["name"] = name, ["type"] = type };
        if (index is not null)
        {
            result["index"] = index;
        }

        if (size is not null)
        {
            result["size"] = size;
        }

        result["offset"] = at;
        if (arrayLength is not { } count)
        {
            (JsonNode? value, string? text) = DecodeValue(type, size ?? 0, structDescription, fieldWhere);
            result["value"] = value;
            if (text is not null)
            {
                result["text"] = text;
            }

            return result;
        }

        CheckArrayFits(count, size ?? 0, fieldWhere, at);
        result["array_len"] = count;
        var values = new JsonArray();
        for (long element = 0; element < count; element++)
        {
            if (element == MaxShownElements && structDescription is null && type != "capability" && size > 0)
            {
                // Fixed-size elements past the shown ones are skipped in one go: decoding them
                // one by one only to drop them would cost work and memory per byte.
                RemainingBytes.Skip(_reader, _streamLength, (count - element) * size.Value, fieldWhere);
                break;
            }

            (JsonNode? value, _) = DecodeValue(type, size ?? 0, structDescription, $"{fieldWhere}[{element}]");
            if (element < MaxShownElements)
            {
                values.Add(value);
            }
        }

        result["values"] = values;
        if (count > MaxShownElements)
        {
            result["values_shown"] = MaxShownElements;
        }

        return result;
    }

    private void CheckArrayFits(long count, long elementSize, string where, long at)
    {
        long left = RemainingBytes.After(_reader, _streamLength);
        bool fits = elementSize > 0 ? count <= left / elementSize : count <= MaxUnsizedElements;
        if (!fits)
        {
            throw new StreamAnalysisException(
                $"vmdesc field {where}: array_len {count} of {elementSize}-byte elements does not fit in the {left} bytes left", at);
        }
    }

    private (JsonNode? Value, string? Text) DecodeValue(string type, long size, JsonObject? structDescription, string where)
    {
        long start = _reader.Offset;
        (JsonNode? Value, string? Text) decoded = DecodeValueBody(type, size, structDescription, where);
        if (_reader.Offset == start && ++_emptyValues > MaxEmptyValues)
        {
            throw new StreamAnalysisException(
                $"vmdesc field {where}: more than {MaxEmptyValues} values in this section take no stream bytes (empty structs or zero-size fields)", start);
        }

        return decoded;
    }

    private (JsonNode? Value, string? Text) DecodeValueBody(string type, long size, JsonObject? structDescription, string where)
    {
        if (structDescription is not null)
        {
            var nested = new JsonObject();
            DecodeStructInto(nested, structDescription, where);
            return (nested, null);
        }

        if (type == "capability")
        {
            return (JsonValue.Create(_reader.GetCountedString()), null);
        }

        long at = _reader.Offset;
        byte[] shown = ReadShown(size, where, at);
        bool whole = shown.Length == size;
        if (type == "bool" && size == 1)
        {
            return (JsonValue.Create(shown[0] != 0), null);
        }

        if (type == "nullptr" && size == 1)
        {
            return shown[0] == NullPointerMarker
                ? (JsonValue.Create("nullptr"), null)
                : throw new StreamAnalysisException(
                    $"{where}: expected the NULL pointer marker 0x{NullPointerMarker:x2}, found 0x{shown[0]:x2}", at);
        }

        if (whole && size is >= 1 and <= sizeof(ulong))
        {
            if (SignedIntegerTypes.Contains(type))
            {
                return (JsonValue.Create(FieldValueFormat.Integer(shown, signed: true)), null);
            }

            if (UnsignedIntegerTypes.Contains(type))
            {
                return (JsonValue.Create(FieldValueFormat.Integer(shown, signed: false)), null);
            }
        }

        return (JsonValue.Create(FieldValueFormat.Bytes(shown, size)), FieldValueFormat.NulPaddedText(shown));
    }

    private byte[] ReadShown(long size, string where, long at)
    {
        RemainingBytes.Ensure(_reader, _streamLength, (ulong)size, $"field {where}", at);
        byte[] shown = new byte[Math.Min(size, MaxShownBytes)];
        _reader.ReadExactly(shown, where);
        RemainingBytes.Skip(_reader, _streamLength, size - shown.Length, where);
        return shown;
    }
}
