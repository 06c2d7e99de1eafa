namespace MiniVmm.Migration.Report.Rendering;

/// <summary>How fast the guest dirtied RAM against how fast the stream moved, over time.</summary>
internal static class RatePlot
{
    /// <summary>The svg.</summary>
    public static string Render(ReportPlotData data)
    {
        var plot = new SvgPlot("rates", "Dirty rate against bandwidth");
        long pageSize = data.PageSize;
        double max = data.Report.Samples.Count == 0 ? 0
            : data.Report.Samples.Max(s => Math.Max(s.DirtyPagesRate * (double)pageSize, s.BandwidthBytesPerSecond));
        var values = new ValueAxis(max, plot.PlotBottom, SvgPlot.PlotTop, v => ReportFormat.Rate(v), binary: true);
        plot.Line("bandwidth", "bandwidth", SeriesColors.Bandwidth, data.StepPoints(values, s => s.BandwidthBytesPerSecond));
        plot.Line("dirty-rate", "dirty rate", SeriesColors.DirtyRate, data.StepPoints(values, s => s.DirtyPagesRate * (double)pageSize));
        return plot.Render(values, data.Time, data.Markers);
    }

    /// <summary>Whether the guest was ever seen dirtying pages (a short run may measure none).</summary>
    public static bool AnyDirtyRate(ReportPlotData data) => data.Report.Samples.Any(s => s.DirtyPagesRate > 0);
}
