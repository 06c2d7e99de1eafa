using System.Text.Json;
using System.Text.Unicode;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp.Protocol;

/// <summary>
/// Cuts the byte stream from a QMP client into JSON values. Values need not be one per line: an
/// object split across reads waits for its end, several in one read come out one by one. After
/// malformed input it reports the error and starts again after the next newline, as QEMU's
/// parser resynchronises. A single value larger than <see cref="MaxMessageBytes"/> is an error.
/// </summary>
public sealed class QmpInputFramer
{
    /// <summary>The default limit on one message: 1 MiB.</summary>
    public const int DefaultMaxMessageBytes = 1 << 20;

    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 256 };
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 256 };

    private const int InitialBufferBytes = 4096;

    private byte[] _buffer = new byte[InitialBufferBytes];
    private int _start;
    private int _end;
    private bool _discardingLine;

    /// <summary>Creates a framer with a limit on the size of one message.</summary>
    public QmpInputFramer(int maxMessageBytes = DefaultMaxMessageBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageBytes, 2);
        MaxMessageBytes = maxMessageBytes;
    }

    /// <summary>The largest single message accepted, in bytes.</summary>
    public int MaxMessageBytes { get; }

    /// <summary>Adds bytes read from the client and appends every value they complete to <paramref name="output"/>.</summary>
    public void Feed(ReadOnlySpan<byte> data, List<QmpInput> output)
    {
        Append(data);
        while (_start < _end)
        {
            if (_discardingLine && !DiscardThroughNewline(_start))
            {
                break;
            }

            SkipWhitespace();
            if (_start == _end || !TryTakeValue(output))
            {
                break;
            }
        }

        Compact();
    }

    private bool TryTakeValue(List<QmpInput> output)
    {
        ReadOnlySpan<byte> pending = _buffer.AsSpan(_start, _end - _start);
        int length;
        try
        {
            length = CompleteValueLength(pending);
        }
        catch (JsonException error)
        {
            output.Add(QmpInput.Malformed($"JSON parse error, {error.Message}"));
            _discardingLine = true;
            DiscardThroughNewline(_start + ErrorOffset(pending, error));
            return _start < _end;
        }

        if (length == 0)
        {
            if (pending.Length > MaxMessageBytes)
            {
                output.Add(QmpInput.Malformed($"JSON parse error, a message is longer than the {MaxMessageBytes}-byte limit"));
                _discardingLine = true;
                _start = _end;
            }

            return false;
        }

        if (length > MaxMessageBytes)
        {
            output.Add(QmpInput.Malformed($"JSON parse error, a message is longer than the {MaxMessageBytes}-byte limit"));
        }
        else
        {
            output.Add(ParseValue(pending[..length]));
        }

        _start += length;
        return true;
    }

    /// <summary>The length of the first complete value in <paramref name="pending"/>, or 0 if it is not complete yet.</summary>
    private static int CompleteValueLength(ReadOnlySpan<byte> pending)
    {
        var reader = new Utf8JsonReader(pending, isFinalBlock: false, new JsonReaderState(ReaderOptions));
        if (!reader.Read())
        {
            return 0;
        }

        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !reader.TrySkip())
        {
            return 0;
        }

        return checked((int)reader.BytesConsumed);
    }

    /// <summary>
    /// Parses one complete value. The JSON reader checks structure but decodes names and strings
    /// only when they are read, so the bytes are checked to be UTF-8 first (as QEMU's lexer
    /// does) and every name and string is decoded here: a bad escape (a lone surrogate) or a
    /// duplicate member is a parse error now, not an exception in whatever reads it later.
    /// </summary>
    private static QmpInput ParseValue(ReadOnlySpan<byte> json)
    {
        if (!Utf8.IsValid(json))
        {
            return QmpInput.Malformed($"JSON parse error, invalid UTF-8 sequence at byte {FirstInvalidUtf8(json)} of the message");
        }

        try
        {
            JsonNode? value = JsonNode.Parse(json, documentOptions: DocumentOptions);
            Materialize(value);
            return QmpInput.Parsed(value);
        }
        catch (Exception error) when (error is JsonException or ArgumentException or InvalidOperationException)
        {
            return QmpInput.Malformed($"JSON parse error, {error.Message}");
        }
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> json)
    {
        int at = 0;
        while (at < json.Length && System.Text.Rune.DecodeFromUtf8(json[at..], out _, out int consumed) == System.Buffers.OperationStatus.Done)
        {
            at += consumed;
        }

        return at;
    }

    /// <summary>Decodes every member name and string of <paramref name="node"/> (depth is bounded by the parser's MaxDepth).</summary>
    private static void Materialize(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject members:
                foreach (KeyValuePair<string, JsonNode?> member in members)
                {
                    Materialize(member.Value);
                }

                break;
            case JsonArray elements:
                foreach (JsonNode? element in elements)
                {
                    Materialize(element);
                }

                break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                _ = value.GetValue<string>();
                break;
        }
    }

    /// <summary>Where in <paramref name="pending"/> the reader failed, from the exception's line and column.</summary>
    private static int ErrorOffset(ReadOnlySpan<byte> pending, JsonException error)
    {
        long line = error.LineNumber ?? 0;
        int offset = 0;
        while (line > 0)
        {
            int newline = pending[offset..].IndexOf((byte)'\n');
            if (newline < 0)
            {
                return pending.Length;
            }

            offset += newline + 1;
            line--;
        }

        return (int)Math.Min(pending.Length, offset + (error.BytePositionInLine ?? 0));
    }

    /// <summary>Drops input up to and including the first newline at or after <paramref name="from"/>; false if none arrived yet.</summary>
    private bool DiscardThroughNewline(int from)
    {
        int newline = _buffer.AsSpan(from, _end - from).IndexOf((byte)'\n');
        if (newline < 0)
        {
            _start = _end;
            return false;
        }

        _start = from + newline + 1;
        _discardingLine = false;
        return true;
    }

    private void SkipWhitespace()
    {
        while (_start < _end && _buffer[_start] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            _start++;
        }
    }

    private void Append(ReadOnlySpan<byte> data)
    {
        if (_end + data.Length > _buffer.Length)
        {
            Compact();
            if (_end + data.Length > _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _end + data.Length));
            }
        }

        data.CopyTo(_buffer.AsSpan(_end));
        _end += data.Length;
    }

    private void Compact()
    {
        if (_start == _end)
        {
            _start = _end = 0;
            if (_buffer.Length > InitialBufferBytes * 16)
            {
                _buffer = new byte[InitialBufferBytes];
            }
        }
        else if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
    }
}
