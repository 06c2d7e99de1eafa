using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;

namespace MiniVmm.Devices.Models;

/// <summary>One property of a device model: its name, kind, description and default, and the constructor parameter it fills.</summary>
public sealed record DeviceProperty(string Name, DevicePropertyKind Kind, string Description, ParameterInfo Parameter)
{
    /// <summary>Whether the command line must give it (the parameter has no default value).</summary>
    public bool Required => !Parameter.HasDefaultValue;

    /// <summary>The type name QEMU's help would show: <c>str</c>, <c>bool</c>, <c>uint64</c>, <c>int32</c>...</summary>
    public string TypeName => Kind switch
    {
        DevicePropertyKind.String => "str",
        DevicePropertyKind.Bool => "bool",
        _ => (Kind == DevicePropertyKind.Unsigned ? "uint" : "int") + (Marshal.SizeOf(Nullable.GetUnderlyingType(Parameter.ParameterType) ?? Parameter.ParameterType) * 8),
    };

    /// <summary>Builds the property for <paramref name="parameter"/>, or says why its type cannot be one.</summary>
    public static DeviceProperty For(ParameterInfo parameter, DevicePropertyAttribute attribute)
    {
        Type type = Nullable.GetUnderlyingType(parameter.ParameterType) ?? parameter.ParameterType;
        DevicePropertyKind kind = type switch
        {
            _ when type == typeof(string) => DevicePropertyKind.String,
            _ when type == typeof(bool) => DevicePropertyKind.Bool,
            _ when type == typeof(byte) || type == typeof(ushort) || type == typeof(uint) || type == typeof(ulong) => DevicePropertyKind.Unsigned,
            _ when type == typeof(sbyte) || type == typeof(short) || type == typeof(int) || type == typeof(long) => DevicePropertyKind.Signed,
            _ => throw new ArgumentException(
                $"device property '{attribute.Name}' of {parameter.Member.DeclaringType?.Name}: {type.Name} is not a property type (string, bool or an integer)"),
        };
        return new DeviceProperty(attribute.Name, kind, attribute.Description, parameter);
    }

    /// <summary>Converts <paramref name="text"/> to the parameter's type, or returns why it cannot.</summary>
    public object? Convert(string text, out string? error)
    {
        error = null;
        Type type = Nullable.GetUnderlyingType(Parameter.ParameterType) ?? Parameter.ParameterType;
        switch (Kind)
        {
            case DevicePropertyKind.String:
                return text;
            case DevicePropertyKind.Bool:
                switch (text)
                {
                    case "on" or "yes" or "true":
                        return true;
                    case "off" or "no" or "false":
                        return false;
                    default:
                        error = $"Parameter '{Name}' expects 'on' or 'off'";
                        return null;
                }

            default:
                if (!TryParseInteger(text, out Int128 value))
                {
                    error = $"Parameter '{Name}' expects {TypeName}";
                    return null;
                }

                try
                {
                    return System.Convert.ChangeType(checked((decimal)value), type, CultureInfo.InvariantCulture);
                }
                catch (Exception failure) when (failure is OverflowException or InvalidCastException)
                {
                    error = $"Parameter '{Name}' expects {TypeName}: {text} is out of range";
                    return null;
                }
        }
    }

    /// <summary>The default as <c>-device NAME,help</c> shows it: null for a required property, empty for an optional one without a value.</summary>
    public string? DefaultText => !Parameter.HasDefaultValue
        ? null
        : Parameter.DefaultValue switch
        {
            null => "",
            bool flag => flag ? "on" : "off",
            object value => System.Convert.ToString(value, CultureInfo.InvariantCulture),
        };

    private static bool TryParseInteger(string text, out Int128 value)
    {
        bool negative = text.StartsWith('-');
        string digits = negative ? text[1..] : text;
        bool ok = digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? UInt128.TryParse(digits[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out UInt128 magnitude)
            : UInt128.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out magnitude);
        value = ok && magnitude <= (UInt128)Int128.MaxValue ? (negative ? -(Int128)magnitude : (Int128)magnitude) : 0;
        return ok && magnitude <= (UInt128)Int128.MaxValue;
    }
}
