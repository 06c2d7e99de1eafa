namespace MiniVmm.Host.CommandLine;

/// <summary>
/// QEMU's <c>key=value,key=value</c> option syntax: <c>,,</c> is a literal comma, a first element
/// without <c>=</c> is the value of the option's implied key (<c>-M none</c> is
/// <c>-M type=none</c>), a bare <c>key</c> means <c>key=on</c> and a bare <c>nokey</c> means
/// <c>key=off</c>. A later value of a key replaces an earlier one.
/// </summary>
public static class QemuOptionList
{
    /// <summary>Parses the value <paramref name="text"/> of the option <paramref name="option"/>.</summary>
    /// <param name="option">The option's name, for error messages (e.g. <c>-name</c>).</param>
    /// <param name="text">The option's value.</param>
    /// <param name="impliedKey">The key a leading bare value belongs to, or null.</param>
    /// <param name="knownKeys">The keys the option takes, or null to take any.</param>
    /// <param name="shownValue">The option's whole value for error messages, when <paramref name="text"/> is only part of it.</param>
    /// <exception cref="InvalidCommandLineException">An unknown or empty key.</exception>
    public static IReadOnlyDictionary<string, string> Parse(
        string option, string text, string? impliedKey, IReadOnlyCollection<string>? knownKeys, string? shownValue = null)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        int position = 0;
        bool first = true;
        while (position < text.Length)
        {
            int keyEnd = text.IndexOfAny(['=', ','], position);
            bool hasEquals = keyEnd >= 0 && text[keyEnd] == '=';
            string key;
            string value;
            if (first && impliedKey is not null && !hasEquals)
            {
                key = impliedKey;
                value = ReadValue(text, ref position);
            }
            else
            {
                keyEnd = keyEnd < 0 ? text.Length : keyEnd;
                key = text[position..keyEnd];
                position = keyEnd;
                if (hasEquals)
                {
                    position++;
                    value = ReadValue(text, ref position);
                }
                else
                {
                    position = Math.Min(text.Length, position + 1);
                    (key, value) = BareFlag(key, knownKeys);
                }
            }

            if (key.Length == 0 || (knownKeys is not null && !knownKeys.Contains(key)))
            {
                throw new InvalidCommandLineException($"{option} {shownValue ?? text}: Invalid parameter '{key}'");
            }

            values[key] = value;
            first = false;
        }

        return values;
    }

    /// <summary>Reads an on/off value the way QEMU does (on, yes, true, y / off, no, false, n).</summary>
    /// <exception cref="InvalidCommandLineException">Anything else.</exception>
    public static bool ParseBoolean(string option, string text, string key, string value) => value switch
    {
        "on" or "yes" or "true" or "y" => true,
        "off" or "no" or "false" or "n" => false,
        _ => throw new InvalidCommandLineException($"{option} {text}: Parameter '{key}' expects 'on' or 'off'"),
    };

    private static (string Key, string Value) BareFlag(string key, IReadOnlyCollection<string>? knownKeys) =>
        key.StartsWith("no", StringComparison.Ordinal) && key.Length > 2
            && (knownKeys is null ? false : knownKeys.Contains(key[2..]) && !knownKeys.Contains(key))
            ? (key[2..], "off")
            : (key, "on");

    /// <summary>Reads up to the next single comma, turning <c>,,</c> into <c>,</c>; leaves the position after that comma.</summary>
    private static string ReadValue(string text, ref int position)
    {
        var value = new System.Text.StringBuilder();
        while (position < text.Length)
        {
            char c = text[position++];
            if (c != ',')
            {
                value.Append(c);
            }
            else if (position < text.Length && text[position] == ',')
            {
                value.Append(',');
                position++;
            }
            else
            {
                break;
            }
        }

        return value.ToString();
    }
}
