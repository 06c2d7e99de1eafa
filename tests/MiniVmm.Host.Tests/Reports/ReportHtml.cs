using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace MiniVmm.Host.Tests.Reports;

/// <summary>Reads a rendered report the way the tests look at it: its SVG plots as XML, its summary rows by key.</summary>
internal static partial class ReportHtml
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    /// <summary>Every plot, by its <c>data-plot</c>, parsed as XML (which also proves each is well formed).</summary>
    public static IReadOnlyList<(string Name, XElement Svg)> Plots(string html) =>
        [.. SvgElement().Matches(html).Select(m => XElement.Parse(m.Value)).Select(e => ((string)e.Attribute("data-plot")!, e))];

    /// <summary>The series of a plot, by <c>data-series</c>.</summary>
    public static IReadOnlyList<string> Series(XElement plot) =>
        [.. plot.Descendants(Svg + "g").Where(g => ((string?)g.Attribute("class")) == "series").Select(g => (string)g.Attribute("data-series")!)];

    /// <summary>The summary rows that show a query-migrate member: <c>data-key</c> → <c>data-value</c>.</summary>
    public static IReadOnlyDictionary<string, string> SummaryValues(string html) =>
        SummaryRow().Matches(html).ToDictionary(m => m.Groups[1].Value, m => System.Net.WebUtility.HtmlDecode(m.Groups[2].Value));

    [GeneratedRegex("<svg class=\"plot\".*?</svg>", RegexOptions.Singleline)]
    private static partial Regex SvgElement();

    [GeneratedRegex("<tr data-key=\"([^\"]+)\" data-value=\"([^\"]*)\">")]
    private static partial Regex SummaryRow();
}
