using System.Text;
using MiniVmm.Migration.Report.Model;
using static MiniVmm.Migration.Report.Rendering.ReportFormat;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>Bytes sent in each pass, stacked by section kind; many short passes are summed into groups (<see cref="PassGroup"/>).</summary>
internal static class PassBytesPlot
{
    /// <summary>The svg and a caption saying how passes were grouped.</summary>
    public static (string Svg, string Caption) Render(ReportPlotData data)
    {
        IReadOnlyList<PassGroup> groups = PassGroup.Of(data.Report.Passes);
        var plot = new SvgPlot("pass-bytes", "Bytes sent per pass, by section");
        double max = groups.Count == 0 ? 0 : groups.Max(g => g.BytesSent.Total);
        var values = new ValueAxis(max, plot.PlotBottom, SvgPlot.PlotTop, v => Bytes(v), binary: true);
        double left = SvgPlot.MarginLeft;
        double slot = (SvgPlot.Width - SvgPlot.MarginRight - left) / Math.Max(1, groups.Count);
        double barWidth = Math.Max(1, slot * 0.75);
        var below = new long[groups.Count];
        foreach ((string name, string label, string color, Func<ReportSectionBytes, long> bytes) in SectionBytesPlot.Kinds)
        {
            var bars = new StringBuilder();
            for (int i = 0; i < groups.Count; i++)
            {
                long value = bytes(groups[i].BytesSent);
                double bottom = values.Y(below[i]);
                below[i] += value;
                double top = values.Y(below[i]);
                if (value > 0)
                {
                    bars.Append(Invariant($"<rect x=\"{Coordinate(left + (i * slot) + ((slot - barWidth) / 2))}\" y=\"{Coordinate(top)}\" width=\"{Coordinate(barWidth)}\" height=\"{Coordinate(Math.Max(0.5, bottom - top))}\" fill=\"{color}\"><title>pass {Escape(groups[i].Label)}: {label} {Bytes(value)}</title></rect>"));
                }
            }

            plot.Legend(label, color);
            plot.Series(name, label, bars.ToString());
        }

        double widestLabel = groups.Count == 0 ? 0 : groups.Max(g => g.Label.Length) * 6.5;
        int labelEvery = Math.Max(1, (int)Math.Ceiling((widestLabel + 10) / slot));
        for (int i = 0; i < groups.Count; i++)
        {
            double x = left + (i * slot) + (slot / 2);
            if (i % labelEvery == 0)
            {
                plot.Raw(Invariant($"<text class=\"tick\" x=\"{Coordinate(x)}\" y=\"{Coordinate(plot.PlotBottom + 16)}\" text-anchor=\"middle\">{Escape(groups[i].Label)}</text>"));
            }

            if (data.Report.Switchover is { } decision && groups[i].Contains(decision.Pass))
            {
                bool leftSide = x > SvgPlot.Width - SvgPlot.MarginRight - 90;
                plot.Raw(Invariant($"<g class=\"switchover-marker\"><line x1=\"{Coordinate(x)}\" x2=\"{Coordinate(x)}\" y1=\"{SvgPlot.PlotTop - 4}\" y2=\"{Coordinate(plot.PlotBottom)}\"/><text x=\"{Coordinate(leftSide ? x - 4 : x + 4)}\" y=\"{SvgPlot.PlotTop + 8}\" text-anchor=\"{(leftSide ? "end" : "start")}\">switchover</text></g>"));
            }
        }

        plot.Raw(Invariant($"<text class=\"tick\" x=\"{Coordinate(SvgPlot.Width - SvgPlot.MarginRight)}\" y=\"{Coordinate(plot.Height - 4)}\" text-anchor=\"end\">pass</text>"));
        int passes = data.Report.Passes.Count;
        int size = groups.Count == 0 ? 0 : groups[0].LastPass - groups[0].FirstPass + 1;
        string caption = passes == 0
            ? "No pass was recorded (nothing iterated, or the migration ended during setup)."
            : size > 1
                ? Invariant($"{passes} passes, summed in runs of {size} so that each bar can be read (near convergence passes can follow each other every few milliseconds). Hover a bar for its figures.")
                : Invariant($"{passes} passes, one bar each. The last bar is the pass cut short by the switchover; what went with the VM stopped is in the downtime bytes.");
        if (passes >= 2)
        {
            long first = data.Report.Passes[0].BytesSent.Total;
            long rest = data.Report.Passes.Skip(1).Sum(p => p.BytesSent.Total);
            caption += Invariant($" The first pass sends every page ({Bytes(first)}); the {passes - 1} after it sent {Bytes(rest)} together, only what the guest dirtied again.");
        }

        return (plot.Render(values, time: null, markers: null), caption);
    }
}
