using System.Globalization;
using System.Text;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>How the report writes numbers and text: binary byte units, invariant culture, HTML-escaped.</summary>
internal static class ReportFormat
{
    /// <summary>Bytes in B, KiB, MiB or GiB.</summary>
    public static string Bytes(double bytes) => Math.Abs(bytes) switch
    {
        >= 1L << 30 => Invariant($"{bytes / (1L << 30):0.##} GiB"),
        >= 1L << 20 => Invariant($"{bytes / (1L << 20):0.#} MiB"),
        >= 1L << 10 => Invariant($"{bytes / 1024:0.#} KiB"),
        _ => Invariant($"{bytes:0} B"),
    };

    /// <summary>Bytes per second.</summary>
    public static string Rate(double bytesPerSecond) => Bytes(bytesPerSecond) + "/s";

    /// <summary>A time since the start: ms below a second, else seconds.</summary>
    public static string Time(double milliseconds) =>
        Math.Abs(milliseconds) < 1000 ? Invariant($"{milliseconds:0} ms") : Invariant($"{milliseconds / 1000:0.###} s");

    /// <summary>A number for an SVG coordinate.</summary>
    public static string Coordinate(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    /// <summary>An integer as text, no grouping.</summary>
    public static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Text made safe for HTML content and attribute values.</summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.AsSpan().IndexOfAny("&<>\"'") < 0)
        {
            return text ?? "";
        }

        var escaped = new StringBuilder(text.Length + 16);
        foreach (char c in text)
        {
            escaped.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => c.ToString(),
            });
        }

        return escaped.ToString();
    }

    /// <summary>Formats with the invariant culture.</summary>
    public static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
