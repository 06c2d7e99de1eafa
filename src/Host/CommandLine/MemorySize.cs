using System.Globalization;

namespace MiniVmm.Host.CommandLine;

/// <summary>
/// QEMU's size syntax: a decimal number (with an optional fraction) or a <c>0x</c> hexadecimal
/// integer, then an optional suffix B, K, M, G, T, P or E (either case, powers of 1024). A
/// number without suffix is in the caller's default unit (MiB for <c>-m</c>).
/// </summary>
public static class MemorySize
{
    /// <summary>One mebibyte.</summary>
    public const ulong MiB = 1UL << 20;

    /// <summary>What a bad size's error message explains.</summary>
    public const string Syntax =
        "expects a non-negative number below 2^64; optional suffix K, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta- and exabytes";

    /// <summary>Parses <paramref name="text"/>; false if it is not a size or does not fit 64 bits.</summary>
    public static bool TryParse(string text, ulong defaultUnit, out ulong bytes)
    {
        bytes = 0;
        bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        int index = hex ? 2 : 0;
        int digitsStart = index;
        while (index < text.Length && (hex ? char.IsAsciiHexDigit(text[index]) : char.IsAsciiDigit(text[index])))
        {
            index++;
        }

        if (index == digitsStart)
        {
            return false;
        }

        string integerDigits = text[digitsStart..index];
        string fractionDigits = "";
        if (!hex && index < text.Length && text[index] == '.')
        {
            int fractionStart = ++index;
            while (index < text.Length && char.IsAsciiDigit(text[index]))
            {
                index++;
            }

            fractionDigits = text[fractionStart..index];
            if (fractionDigits.Length == 0)
            {
                return false;
            }
        }

        ulong unit = defaultUnit;
        if (index < text.Length)
        {
            if (index != text.Length - 1 || !TryGetUnit(text[index], out unit))
            {
                return false;
            }
        }

        if (fractionDigits.Length > 0 && unit == 1)
        {
            return false;
        }

        if (!ulong.TryParse(integerDigits, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong integer))
        {
            return false;
        }

        try
        {
            ulong whole = checked(integer * unit);
            ulong fraction = fractionDigits.Length == 0
                ? 0
                : (ulong)(decimal.Parse("0." + fractionDigits[..Math.Min(fractionDigits.Length, 20)], CultureInfo.InvariantCulture) * unit);
            bytes = checked(whole + fraction);
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }

    private static bool TryGetUnit(char suffix, out ulong unit)
    {
        int shift = char.ToUpperInvariant(suffix) switch
        {
            'B' => 0,
            'K' => 10,
            'M' => 20,
            'G' => 30,
            'T' => 40,
            'P' => 50,
            'E' => 60,
            _ => -1,
        };
        unit = shift < 0 ? 0 : 1UL << shift;
        return shift >= 0;
    }
}
