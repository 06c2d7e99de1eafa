using System.Buffers;
using System.Globalization;
using System.Text;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// Builds the compact JSON of the migration stream's device description (vmdesc) with the
/// exact formatting QEMU's JSON writer produces: <c>": "</c> after a member name,
/// <c>", "</c> between members and elements, no newlines, decimal integers, and strings
/// escaped with the short forms for quote, backslash, \b, \f, \n, \r, \t and
/// <c>\uXXXX</c> (upper-case hex, surrogate pairs beyond the BMP) for every other
/// character below 0x20 or from 0x7F on. The output is therefore pure ASCII.
/// </summary>
/// <remarks>
/// Inside an object every value needs a member name; inside an array (and at the top level)
/// values have none. Breaking either rule, or closing the wrong kind of container, throws
/// <see cref="InvalidOperationException"/>.
/// </remarks>
public sealed class VmDescriptionWriter
{
    private readonly StringBuilder _text = new();

    // One entry per open container: true for an array, false for an object.
    private readonly Stack<bool> _openContainers = new();

    private bool _needsSeparator;

    /// <summary>True when every container opened so far has been closed again.</summary>
    public bool IsComplete => _openContainers.Count == 0;

    /// <summary>Number of containers currently open.</summary>
    public int Depth => _openContainers.Count;

    /// <summary>Opens an object, as a member called <paramref name="name"/> when inside an object.</summary>
    public void StartObject(string? name = null)
    {
        BeginValue(name);
        _text.Append('{');
        Enter(isArray: false);
    }

    /// <summary>Closes the innermost container, which must be an object.</summary>
    public void EndObject()
    {
        Leave(isArray: false);
        _text.Append('}');
    }

    /// <summary>Opens an array, as a member called <paramref name="name"/> when inside an object.</summary>
    public void StartArray(string? name = null)
    {
        BeginValue(name);
        _text.Append('[');
        Enter(isArray: true);
    }

    /// <summary>Closes the innermost container, which must be an array.</summary>
    public void EndArray()
    {
        Leave(isArray: true);
        _text.Append(']');
    }

    /// <summary>Writes a string value.</summary>
    public void String(string? name, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        BeginValue(name);
        AppendQuoted(value);
    }

    /// <summary>Writes a signed integer value.</summary>
    public void Int64(string? name, long value)
    {
        BeginValue(name);
        _text.Append(value.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Writes an unsigned integer value.</summary>
    public void UInt64(string? name, ulong value)
    {
        BeginValue(name);
        _text.Append(value.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Writes <c>true</c> or <c>false</c>.</summary>
    public void Bool(string? name, bool value)
    {
        BeginValue(name);
        _text.Append(value ? "true" : "false");
    }

    /// <summary>Writes <c>null</c>.</summary>
    public void Null(string? name)
    {
        BeginValue(name);
        _text.Append("null");
    }

    /// <summary>The JSON written so far.</summary>
    public override string ToString() => _text.ToString();

    /// <summary>The JSON written so far as UTF-8 bytes (ASCII, as every other character is escaped).</summary>
    public byte[] ToUtf8() => Encoding.UTF8.GetBytes(_text.ToString());

    private bool InObject => _openContainers.Count > 0 && !_openContainers.Peek();

    private void BeginValue(string? name)
    {
        if (InObject)
        {
            if (name is null)
            {
                throw new InvalidOperationException("a value inside a JSON object needs a member name");
            }
        }
        else if (name is not null)
        {
            throw new InvalidOperationException($"member name \"{name}\" given outside a JSON object");
        }

        if (_needsSeparator)
        {
            _text.Append(", ");
        }

        _needsSeparator = true;
        if (name is not null)
        {
            AppendQuoted(name);
            _text.Append(": ");
        }
    }

    private void Enter(bool isArray)
    {
        _openContainers.Push(isArray);
        _needsSeparator = false;
    }

    private void Leave(bool isArray)
    {
        if (_openContainers.Count == 0)
        {
            throw new InvalidOperationException("no JSON container is open");
        }

        if (_openContainers.Peek() != isArray)
        {
            throw new InvalidOperationException(isArray
                ? "the innermost open JSON container is an object, not an array"
                : "the innermost open JSON container is an array, not an object");
        }

        _openContainers.Pop();
        _needsSeparator = true;
    }

    private void AppendQuoted(string value)
    {
        _text.Append('"');
        int index = 0;
        while (index < value.Length)
        {
            // A lone surrogate becomes U+FFFD, as an undecodable byte sequence does for QEMU.
            OperationStatus status = Rune.DecodeFromUtf16(value.AsSpan(index), out Rune rune, out int consumed);
            index += Math.Max(consumed, 1);
            int cp = status == OperationStatus.Done ? rune.Value : Rune.ReplacementChar.Value;
            switch (cp)
            {
                case '"':
                    _text.Append("\\\"");
                    break;
                case '\\':
                    _text.Append("\\\\");
                    break;
                case '\b':
                    _text.Append("\\b");
                    break;
                case '\f':
                    _text.Append("\\f");
                    break;
                case '\n':
                    _text.Append("\\n");
                    break;
                case '\r':
                    _text.Append("\\r");
                    break;
                case '\t':
                    _text.Append("\\t");
                    break;
                default:
                    if (cp > 0xFFFF)
                    {
                        int above = cp - 0x10000;
                        AppendUnicodeEscape(0xD800 + (above >> 10));
                        AppendUnicodeEscape(0xDC00 + (above & 0x3FF));
                    }
                    else if (cp < 0x20 || cp >= 0x7F)
                    {
                        AppendUnicodeEscape(cp);
                    }
                    else
                    {
                        _text.Append((char)cp);
                    }

                    break;
            }
        }

        _text.Append('"');
    }

    private void AppendUnicodeEscape(int codeUnit) =>
        _text.Append("\\u").Append(codeUnit.ToString("X4", CultureInfo.InvariantCulture));
}
