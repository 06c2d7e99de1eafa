using System.Text;
using static MiniVmm.Migration.Report.Rendering.ReportFormat;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>
/// One plot of a report as inline SVG: a frame with a time axis and a value axis, the series,
/// a legend, and the switchover and downtime marked. Each series is an element with class
/// <c>series</c> and its name in <c>data-series</c>; the svg has class <c>plot</c> and its name
/// in <c>data-plot</c>.
/// </summary>
internal sealed class SvgPlot
{
    /// <summary>The plot's width in SVG units (the page scales it).</summary>
    public const double Width = 960;

    /// <summary>The left margin, for the value axis' labels.</summary>
    public const double MarginLeft = 84;

    /// <summary>The right margin.</summary>
    public const double MarginRight = 16;

    private const double MarginTop = 34;
    private const double MarginBottom = 36;

    private readonly StringBuilder _body = new();
    private readonly List<(string Label, string Color, bool Dashed)> _legend = [];
    private readonly string _name;
    private readonly string _title;

    /// <summary>Starts a plot.</summary>
    /// <param name="name">Its id (<c>data-plot</c>).</param>
    /// <param name="title">Its heading inside the picture.</param>
    /// <param name="height">Its height in SVG units.</param>
    public SvgPlot(string name, string title, double height = 250)
    {
        _name = name;
        _title = title;
        Height = height;
    }

    /// <summary>The plot's height.</summary>
    public double Height { get; }

    /// <summary>The y of the plot area's bottom.</summary>
    public double PlotBottom => Height - MarginBottom;

    /// <summary>The y of the plot area's top.</summary>
    public static double PlotTop => MarginTop;

    /// <summary>The series drawn so far.</summary>
    public int SeriesCount { get; private set; }

    /// <summary>Adds a legend entry.</summary>
    public void Legend(string label, string color, bool dashed = false) => _legend.Add((label, color, dashed));

    /// <summary>Adds one series: <paramref name="content"/> is its SVG, wrapped in a group named <paramref name="series"/>.</summary>
    public void Series(string series, string label, string content)
    {
        SeriesCount++;
        _body.Append("<g class=\"series\" data-series=\"").Append(Escape(series)).Append("\"><title>")
            .Append(Escape(label)).Append("</title>").Append(content).Append("</g>\n");
    }

    /// <summary>Adds a line through <paramref name="points"/> as a series.</summary>
    public void Line(string series, string label, string color, IReadOnlyList<(double X, double Y)> points, bool dashed = false)
    {
        Legend(label, color, dashed);
        Series(series, label, Invariant(
            $"<path class=\"line\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{(dashed ? " stroke-dasharray=\"6 4\"" : "")} d=\"{PathData(points)}\"/>"));
    }

    /// <summary>Adds a filled band between <paramref name="lower"/> and <paramref name="upper"/> (same x values) as a series.</summary>
    public void Band(string series, string label, string color, IReadOnlyList<(double X, double Y)> lower, IReadOnlyList<(double X, double Y)> upper)
    {
        Legend(label, color);
        var outline = new List<(double X, double Y)>(upper);
        for (int i = lower.Count - 1; i >= 0; i--)
        {
            outline.Add(lower[i]);
        }

        string d = outline.Count == 0 ? "" : PathData(outline) + " Z";
        Series(series, label, $"<path class=\"area\" fill=\"{color}\" fill-opacity=\"0.75\" stroke=\"{color}\" d=\"{d}\"/>");
    }

    /// <summary>Adds raw SVG drawn under the series' layer (a shaded region) or over it.</summary>
    public void Raw(string svg) => _body.Append(svg).Append('\n');

    /// <summary>The SVG path data of a polyline.</summary>
    public static string PathData(IReadOnlyList<(double X, double Y)> points)
    {
        var d = new StringBuilder();
        for (int i = 0; i < points.Count; i++)
        {
            d.Append(i == 0 ? 'M' : 'L').Append(Coordinate(points[i].X)).Append(',').Append(Coordinate(points[i].Y)).Append(' ');
        }

        return d.ToString().TrimEnd();
    }

    /// <summary>The svg element: frame, grid, value ticks of <paramref name="values"/>, time ticks of <paramref name="time"/> (or none), markers, series and legend.</summary>
    public string Render(ValueAxis values, TimeAxis? time, PlotMarkers? markers)
    {
        var svg = new StringBuilder();
        double right = Width - MarginRight;
        svg.Append(Invariant($"<svg class=\"plot\" data-plot=\"{Escape(_name)}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {Width} {Coordinate(Height)}\" role=\"img\" aria-label=\"{Escape(_title)}\">\n"));
        svg.Append(Invariant($"<text class=\"plot-title\" x=\"{MarginLeft}\" y=\"18\">{Escape(_title)}</text>\n"));
        foreach (double v in values.Ticks())
        {
            double y = values.Y(v);
            svg.Append(Invariant($"<line class=\"grid\" x1=\"{MarginLeft}\" x2=\"{right}\" y1=\"{Coordinate(y)}\" y2=\"{Coordinate(y)}\"/>"));
            svg.Append(Invariant($"<text class=\"tick\" x=\"{MarginLeft - 6}\" y=\"{Coordinate(y + 4)}\" text-anchor=\"end\">{Escape(values.Format(v))}</text>\n"));
        }

        if (time is not null)
        {
            foreach (double t in time.Ticks())
            {
                double x = time.X(t);
                svg.Append(Invariant($"<line class=\"tickmark\" x1=\"{Coordinate(x)}\" x2=\"{Coordinate(x)}\" y1=\"{Coordinate(PlotBottom)}\" y2=\"{Coordinate(PlotBottom + 4)}\"/>"));
                svg.Append(Invariant($"<text class=\"tick\" x=\"{Coordinate(x)}\" y=\"{Coordinate(PlotBottom + 16)}\" text-anchor=\"middle\">{Escape(Time(t))}</text>\n"));
            }

            if (markers is not null)
            {
                svg.Append(Background(time, markers));
            }
        }

        svg.Append(Invariant($"<line class=\"axis\" x1=\"{MarginLeft}\" x2=\"{right}\" y1=\"{Coordinate(PlotBottom)}\" y2=\"{Coordinate(PlotBottom)}\"/>\n"));
        svg.Append(_body);
        if (time is not null && markers?.SwitchoverMs is { } switchover)
        {
            double x = time.X(switchover);
            svg.Append(Invariant($"<g class=\"switchover-marker\"><line x1=\"{Coordinate(x)}\" x2=\"{Coordinate(x)}\" y1=\"{PlotTop - 4}\" y2=\"{Coordinate(PlotBottom)}\"/>"));
            bool leftSide = x > right - 90;
            svg.Append(Invariant($"<text x=\"{Coordinate(leftSide ? x - 4 : x + 4)}\" y=\"{PlotTop + 8}\" text-anchor=\"{(leftSide ? "end" : "start")}\">switchover</text></g>\n"));
        }

        svg.Append(LegendSvg(right));
        svg.Append("</svg>");
        return svg.ToString();
    }

    private string Background(TimeAxis time, PlotMarkers markers)
    {
        var svg = new StringBuilder();
        if (markers.PassStartsMs.Count <= PlotMarkers.MaxPassLines)
        {
            foreach (long start in markers.PassStartsMs)
            {
                double x = time.X(start);
                svg.Append(Invariant($"<line class=\"pass-line\" x1=\"{Coordinate(x)}\" x2=\"{Coordinate(x)}\" y1=\"{PlotTop}\" y2=\"{Coordinate(PlotBottom)}\"/>"));
            }
        }

        if (markers.DowntimeStartMs is { } stop)
        {
            double x1 = time.X(stop);
            double x2 = Math.Max(x1 + 2, time.X(markers.DowntimeEndMs ?? time.EndMs));
            svg.Append(Invariant($"<rect class=\"downtime\" x=\"{Coordinate(x1)}\" y=\"{PlotTop}\" width=\"{Coordinate(x2 - x1)}\" height=\"{Coordinate(PlotBottom - PlotTop)}\"><title>downtime: the VM was stopped</title></rect>\n"));
        }

        return svg.ToString();
    }

    private string LegendSvg(double right)
    {
        var svg = new StringBuilder();
        double x = right;
        for (int i = _legend.Count - 1; i >= 0; i--)
        {
            (string label, string color, bool dashed) = _legend[i];
            double width = 26 + (label.Length * 6.6);
            x -= width;
            svg.Append(Invariant($"<g class=\"legend\"><line x1=\"{Coordinate(x)}\" x2=\"{Coordinate(x + 18)}\" y1=\"14\" y2=\"14\" stroke=\"{color}\" stroke-width=\"{(dashed ? 2 : 6)}\"{(dashed ? " stroke-dasharray=\"6 4\"" : "")}/>"));
            svg.Append(Invariant($"<text x=\"{Coordinate(x + 22)}\" y=\"18\">{Escape(label)}</text></g>\n"));
        }

        return svg.ToString();
    }
}
