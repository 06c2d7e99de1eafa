namespace MiniVmm.Migration.Report.Rendering;

/// <summary>The auto-converge vCPU throttle, over time.</summary>
internal static class ThrottlePlot
{
    /// <summary>The svg.</summary>
    public static string Render(ReportPlotData data)
    {
        var plot = new SvgPlot("throttle", "Auto-converge vCPU throttle", height: 190);
        double max = data.Report.Samples.Count == 0 ? 0 : data.Report.Samples.Max(s => s.CpuThrottlePercentage);
        var values = new ValueAxis(Math.Max(max, 10), plot.PlotBottom, SvgPlot.PlotTop, v => ReportFormat.Invariant($"{v:0} %"), binary: false);
        plot.Line("throttle", "vCPU throttle", SeriesColors.Throttle, data.StepPoints(values, s => s.CpuThrottlePercentage));
        return plot.Render(values, data.Time, data.Markers);
    }
}
