using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>Pending bytes against the switchover threshold, over time: the source switches over where the first meets the second.</summary>
internal static class PendingPlot
{
    /// <summary>The svg.</summary>
    public static string Render(ReportPlotData data)
    {
        IReadOnlyList<ReportSample> samples = data.Report.Samples;
        var plot = new SvgPlot("pending", "Pending bytes against the switchover threshold");
        double max = samples.Count == 0 ? 0 : samples.Max(s => Math.Max(s.PendingBytes, s.ThresholdBytes));
        if (data.Report.Switchover is { } decision)
        {
            max = Math.Max(max, Math.Max(decision.PendingBytes, decision.ThresholdBytes));
        }

        var values = new ValueAxis(max, plot.PlotBottom, SvgPlot.PlotTop, v => ReportFormat.Bytes(v), binary: true);
        // During setup nothing has been estimated yet: a 0 there would read as "nothing to send".
        plot.Line("pending", "pending", SeriesColors.Pending, data.Points(values, s => s.PendingBytes, s => s.Status != "setup"));
        plot.Line("threshold", "threshold (bandwidth × downtime-limit)", SeriesColors.Threshold, data.StepPoints(values, s => s.ThresholdBytes), dashed: true);
        if (data.Report.Switchover is { } d)
        {
            double x = data.Time.X(d.TimeMs);
            plot.Raw(ReportFormat.Invariant(
                $"<g class=\"decision\"><circle cx=\"{ReportFormat.Coordinate(x)}\" cy=\"{ReportFormat.Coordinate(values.Y(d.PendingBytes))}\" r=\"5\" fill=\"{SeriesColors.Pending}\"/><circle cx=\"{ReportFormat.Coordinate(x)}\" cy=\"{ReportFormat.Coordinate(values.Y(d.ThresholdBytes))}\" r=\"5\" fill=\"none\" stroke=\"{SeriesColors.Threshold}\" stroke-width=\"2\"/></g>"));
        }

        return plot.Render(values, data.Time, data.Markers);
    }
}
