namespace MiniVmm.Host.CommandLine;

/// <summary>One <c>-device DRIVER,key=value,...</c> option.</summary>
/// <param name="Driver">The device type, e.g. <c>loader</c>.</param>
/// <param name="Properties">Its properties, without <c>driver</c>.</param>
/// <param name="Text">The option as typed, for messages.</param>
public sealed record DeviceSpec(string Driver, IReadOnlyDictionary<string, string> Properties, string Text)
{
    /// <summary>A required property, or an error naming the device and the property.</summary>
    public string Require(string name) =>
        Properties.TryGetValue(name, out string? value) && value.Length > 0
            ? value
            : throw new InvalidCommandLineException($"-device {Text}: Parameter '{name}' is missing");

    /// <summary>An optional property.</summary>
    public string? Get(string name) => Properties.GetValueOrDefault(name);

    /// <summary>Rejects properties the driver does not have.</summary>
    public void CheckKnown(params string[] known)
    {
        foreach (string key in Properties.Keys)
        {
            if (!known.Contains(key))
            {
                throw new InvalidCommandLineException($"-device {Text}: Property '{Driver}.{key}' not found");
            }
        }
    }

    /// <summary>An unsigned number property (decimal or 0x hex), or <paramref name="fallback"/> when absent.</summary>
    public ulong GetNumber(string name, ulong fallback)
    {
        if (Get(name) is not { } text)
        {
            return fallback;
        }

        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(text[2..], System.Globalization.NumberStyles.HexNumber, null, out ulong value)
            : ulong.TryParse(text, out value);
        return ok ? value : throw new InvalidCommandLineException($"-device {Text}: Parameter '{name}' expects a number");
    }
}
