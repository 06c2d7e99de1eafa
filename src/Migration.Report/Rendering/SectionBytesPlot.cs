using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>Stream bytes sent so far, stacked by section kind (RAM, VFIO, harness, other), over time.</summary>
internal static class SectionBytesPlot
{
    /// <summary>The section kinds in stacking order, bottom first, with their colours.</summary>
    public static readonly IReadOnlyList<(string Name, string Label, string Color, Func<ReportSectionBytes, long> Bytes)> Kinds =
    [
        ("ram", "RAM", SeriesColors.Ram, b => b.Ram),
        ("vfio", "VFIO", SeriesColors.Vfio, b => b.Vfio),
        ("harness", "harness", SeriesColors.Harness, b => b.Harness),
        ("other", "other", SeriesColors.Other, b => b.Other),
    ];

    /// <summary>The svg.</summary>
    public static string Render(ReportPlotData data)
    {
        IReadOnlyList<ReportSample> samples = data.Report.Samples;
        var plot = new SvgPlot("section-bytes", "Bytes sent by section, cumulative");
        double max = samples.Count == 0 ? 0 : samples.Max(s => s.BytesSent.Total);
        var values = new ValueAxis(max, plot.PlotBottom, SvgPlot.PlotTop, v => ReportFormat.Bytes(v), binary: true);
        var below = new long[samples.Count];
        foreach ((string name, string label, string color, Func<ReportSectionBytes, long> bytes) in Kinds)
        {
            var lower = new List<(double X, double Y)>(samples.Count);
            var upper = new List<(double X, double Y)>(samples.Count);
            for (int i = 0; i < samples.Count; i++)
            {
                double x = data.Time.X(samples[i].TimeMs);
                lower.Add((x, values.Y(below[i])));
                below[i] += bytes(samples[i].BytesSent);
                upper.Add((x, values.Y(below[i])));
            }

            long total = samples.Count == 0 ? 0 : bytes(samples[^1].BytesSent);
            plot.Band(name, $"{label} {ReportFormat.Bytes(total)}", color, lower, upper);
        }

        return plot.Render(values, data.Time, data.Markers);
    }
}
