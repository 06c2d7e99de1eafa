using MiniVmm.Migration.Control;
using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>What the plots of one report share: its time axis, its markers and its page size.</summary>
internal sealed class ReportPlotData
{
    /// <summary>Derives the shared figures from <paramref name="report"/>.</summary>
    public ReportPlotData(MigrationReport report)
    {
        Report = report;
        long end = 1;
        if (report.Samples.Count > 0)
        {
            end = Math.Max(end, report.Samples[^1].TimeMs);
        }

        foreach (ReportEvent e in report.Events)
        {
            end = Math.Max(end, e.TimeMs);
        }

        foreach (ReportPass p in report.Passes)
        {
            end = Math.Max(end, p.EndMs);
        }

        Time = new TimeAxis(end, SvgPlot.MarginLeft, SvgPlot.Width - SvgPlot.MarginRight);
        long? stop = report.Events.FirstOrDefault(e => e.Kind == MigrationTimelineEventKind.Phase && e.Name == "stop")?.TimeMs;
        long? downtimeEnd = stop is { } s
            ? report.Events.FirstOrDefault(e => e.TimeMs >= s && e.Kind == MigrationTimelineEventKind.Phase && e.Name == "cleanup")?.TimeMs
            : null;
        if (stop is { } started && report.Summary.DowntimeMs is { } downtime)
        {
            downtimeEnd = started + downtime;
        }

        Markers = new PlotMarkers(report.Switchover?.TimeMs, stop, downtimeEnd, [.. report.Passes.Select(p => p.StartMs)]);
        PageSize = report.Summary.Ram is { PageSize: > 0 } ram ? ram.PageSize : 4096;
    }

    /// <summary>The report.</summary>
    public MigrationReport Report { get; }

    /// <summary>The time axis of every time plot.</summary>
    public TimeAxis Time { get; }

    /// <summary>The switchover, downtime and pass marks.</summary>
    public PlotMarkers Markers { get; }

    /// <summary>The guest page size, to turn pages per second into bytes per second.</summary>
    public long PageSize { get; }

    /// <summary>The points of <paramref name="value"/> over the samples, on <paramref name="axis"/>.</summary>
    public List<(double X, double Y)> Points(ValueAxis axis, Func<ReportSample, double> value, Func<ReportSample, bool>? where = null) =>
        [.. Report.Samples.Where(s => where?.Invoke(s) ?? true).Select(s => (Time.X(s.TimeMs), axis.Y(value(s))))];

    /// <summary>Like <see cref="Points"/>, holding each value until the next sample (a step line).</summary>
    public List<(double X, double Y)> StepPoints(ValueAxis axis, Func<ReportSample, double> value)
    {
        var points = new List<(double X, double Y)>();
        for (int i = 0; i < Report.Samples.Count; i++)
        {
            double y = axis.Y(value(Report.Samples[i]));
            if (i > 0)
            {
                points.Add((Time.X(Report.Samples[i].TimeMs), points[^1].Y));
            }

            points.Add((Time.X(Report.Samples[i].TimeMs), y));
        }

        return points;
    }
}
