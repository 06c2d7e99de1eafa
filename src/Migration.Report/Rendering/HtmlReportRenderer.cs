using System.Text;
using MiniVmm.Migration.Report.Model;
using static MiniVmm.Migration.Report.Rendering.ReportFormat;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>
/// Renders a <see cref="MigrationReport"/> as one self-contained HTML page: inline CSS and SVG,
/// no script, nothing fetched (a content security policy forbids it). The page shows when and
/// why the migration switched over, the summary table, the plots and the event list.
/// </summary>
public static class HtmlReportRenderer
{
    /// <summary>Events listed at most at the foot of the page (the plots show them all).</summary>
    public const int MaxListedEvents = 2000;

    private const string Style = """
        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 24px auto; max-width: 1000px; padding: 0 16px; }
        h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
        .meta { color: #555; margin: 0 0 12px; }
        .status { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; background: #777; font-weight: 600; }
        .status.completed { background: #31a354; } .status.failed { background: #de2d26; } .status.cancelled { background: #756bb1; }
        .switchover { border-left: 5px solid #d62728; background: #fff5f0; padding: 10px 14px; margin: 12px 0; }
        .switchover p { margin: 4px 0; } .switchover .reason { font-weight: 600; }
        table.summary { border-collapse: collapse; min-width: 60%; }
        table.summary td, table.summary th { border-bottom: 1px solid #e5e5e5; padding: 4px 10px; text-align: left; }
        table.summary td:last-child { text-align: right; font-variant-numeric: tabular-nums; }
        td.passed { color: #1a7f37; } td.failed { color: #c62828; font-weight: 600; }
        figure { margin: 18px 0; } figcaption { color: #555; font-size: 13px; margin-top: 2px; }
        svg.plot { width: 100%; height: auto; background: #fff; border: 1px solid #e5e5e5; border-radius: 4px; }
        svg .plot-title { font-weight: 600; font-size: 14px; fill: #222; }
        svg .tick, svg .legend text, svg .lane-label { font-size: 11px; fill: #444; }
        svg .state { font-size: 11px; fill: #111; pointer-events: none; }
        svg .grid { stroke: #eee; } svg .axis { stroke: #999; } svg .tickmark { stroke: #999; }
        svg .pass-line { stroke: #d9d9d9; stroke-dasharray: 2 3; }
        svg .downtime { fill: #d62728; fill-opacity: 0.10; }
        svg .switchover-marker line { stroke: #d62728; stroke-width: 1.5; stroke-dasharray: 5 3; }
        svg .switchover-marker text { font-size: 11px; font-weight: 600; fill: #d62728; }
        details { margin-top: 16px; } table.events { border-collapse: collapse; font-size: 12px; }
        table.events td { padding: 1px 8px; border-bottom: 1px solid #f0f0f0; vertical-align: top; }
        table.events td:first-child { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        """;

    /// <summary>The page.</summary>
    public static string Render(MigrationReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var data = new ReportPlotData(report);
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
        html.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<link rel=\"icon\" href=\"data:,\">\n");
        html.Append(Invariant($"<title>{Escape(report.Title)}</title>\n<style>\n{Style}\n</style>\n</head>\n<body>\n"));
        html.Append(Invariant($"<h1>{Escape(report.Title)}</h1>\n"));
        html.Append(Invariant($"<p class=\"meta\"><span class=\"status {Escape(report.Summary.Status)}\">{Escape(report.Summary.Status)}</span> started {report.StartedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss.fff} UTC{(report.Uri is null ? "" : $" to {Escape(report.Uri)}")}</p>\n"));

        html.Append(Invariant($"<section class=\"switchover\" data-reason=\"{report.Switchover?.Reason.ToString() ?? "none"}\">\n<p class=\"reason\">{Escape(SwitchoverExplanation.Headline(report))}</p>\n"));
        foreach (string detail in SwitchoverExplanation.Details(report))
        {
            html.Append(Invariant($"<p>{Escape(detail)}</p>\n"));
        }

        html.Append("</section>\n<h2>Summary</h2>\n").Append(SummaryTable.Render(report)).Append('\n');

        html.Append("<h2>Over time</h2>\n");
        Figure(html, PendingPlot.Render(data),
            "The source keeps sending passes while pending (what is left) is above the threshold (what the measured bandwidth moves within the downtime limit); it switches over (red line) once pending is at or below it. The shaded band is the downtime; dotted grey lines are pass starts.");
        string rateCaption = RatePlot.AnyDirtyRate(data)
            ? "The guest's dirty rate (pages it wrote per second × page size) against the bandwidth the stream reached; a migration converges when the first stays below the second."
            : "The dirty rate was 0 in every sample. It is measured, as in QEMU, over periods of about a second between dirty syncs: either the guest wrote no page (an idle guest) or the migration ended before the first period did. It does not mean the guest stood still; only the bandwidth was measured.";
        Figure(html, RatePlot.Render(data), rateCaption);
        Figure(html, SectionBytesPlot.Render(data),
            "Stream bytes sent so far by section: RAM, VFIO device data, the guest harness's state and everything else (other devices and the stream's framing).");
        (string passSvg, string passCaption) = PassBytesPlot.Render(data);
        Figure(html, passSvg, passCaption);
        bool autoConverge = report.Settings.Capabilities.Contains("auto-converge");
        bool throttled = report.Samples.Any(s => s.CpuThrottlePercentage > 0);
        Figure(html, ThrottlePlot.Render(data), (autoConverge, throttled) switch
        {
            (false, _) => "auto-converge was off, so the vCPUs were never throttled (the line stays at 0 %).",
            (true, false) => "auto-converge was on but never throttled the vCPUs: the guest did not outpace the stream for long enough.",
            _ => "When the guest dirtied RAM faster than the stream could carry it for several passes, auto-converge slowed its vCPUs by this much.",
        });
        Figure(html, StateTimelinePlot.Render(data),
            "What the migration, the source VM, each VFIO device (VFIO_MIGRATION) and the guest harness (PAUSE/RUN) were doing, on the same time axis. Hover a bar for its times.");

        EventList(html, report);
        html.Append(Invariant($"<p class=\"meta\">Made by MiniVmm from {report.Samples.Count} samples, {report.Passes.Count} passes and {report.Events.Count} events{(report.DroppedEvents > 0 ? $" ({report.DroppedEvents} more not kept)" : "")}. Its data is in the .json file beside it; <code>minivmm report FILE.json</code> renders it again.</p>\n"));
        html.Append("</body>\n</html>\n");
        return html.ToString();
    }

    private static void Figure(StringBuilder html, string svg, string caption) =>
        html.Append("<figure>\n").Append(svg).Append(Invariant($"\n<figcaption>{Escape(caption)}</figcaption>\n</figure>\n"));

    private static void EventList(StringBuilder html, MigrationReport report)
    {
        html.Append(Invariant($"<details>\n<summary>Events ({report.Events.Count})</summary>\n<table class=\"events\">\n"));
        foreach (ReportEvent e in report.Events.Take(MaxListedEvents))
        {
            html.Append(Invariant($"<tr><td>{Escape(Time(e.TimeMs))}</td><td>{e.Kind}</td><td>{Escape(e.Name)}</td><td>{Escape(e.Detail)}</td></tr>\n"));
        }

        if (report.Events.Count > MaxListedEvents)
        {
            html.Append(Invariant($"<tr><td></td><td colspan=\"3\">… {report.Events.Count - MaxListedEvents} more in the JSON</td></tr>\n"));
        }

        html.Append("</table>\n</details>\n");
    }
}
