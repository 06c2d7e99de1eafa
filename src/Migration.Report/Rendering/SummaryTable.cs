using System.Globalization;
using System.Text;
using MiniVmm.Migration.Report.Model;
using static MiniVmm.Migration.Report.Rendering.ReportFormat;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>
/// The summary table, like the demo's: the final <c>query-migrate</c> figures, then the settings
/// and any notes. A row that shows a <c>query-migrate</c> member carries its path in
/// <c>data-key</c> (<c>ram.transferred</c>) and its exact value in <c>data-value</c>.
/// </summary>
internal static class SummaryTable
{
    /// <summary>The table's HTML.</summary>
    public static string Render(MigrationReport report)
    {
        ReportSummary s = report.Summary;
        var html = new StringBuilder("<table class=\"summary\">\n<thead><tr><th>measure</th><th>value</th></tr></thead>\n<tbody>\n");
        Row(html, "status", "status", s.Status, s.Status);
        Ms(html, "total time", "total-time", s.TotalTimeMs);
        Ms(html, "downtime", "downtime", s.DowntimeMs);
        Ms(html, "setup time", "setup-time", s.SetupTimeMs);
        if (s.Ram is { } ram)
        {
            ByteRow(html, "sent (RAM transferred)", "ram.transferred", ram.Transferred);
            if (s.TotalTimeMs is { } total)
            {
                double seconds = Math.Max(1, total - (s.SetupTimeMs ?? 0)) / 1000.0;
                Row(html, "throughput", null, null, Invariant($"{Rate(ram.Transferred / seconds)} (transferred / (total − setup time))"));
            }

            Row(html, "mbps", "ram.mbps", ram.Mbps.ToString("R", CultureInfo.InvariantCulture), Invariant($"{ram.Mbps:0.###} Mbit/s"));
            Count(html, "passes (dirty syncs)", "ram.dirty-sync-count", ram.DirtySyncCount);
            Count(html, "pages sent", "ram.normal", ram.Normal);
            Count(html, "zero pages sent", "ram.duplicate", ram.Duplicate);
            ByteRow(html, "page data sent", "ram.normal-bytes", ram.NormalBytes);
            ByteRow(html, "sent before the switchover", "ram.precopy-bytes", ram.PrecopyBytes);
            ByteRow(html, "sent during the downtime", "ram.downtime-bytes", ram.DowntimeBytes);
            ByteRow(html, "RAM size", "ram.total", ram.Total);
            ByteRow(html, "remaining", "ram.remaining", ram.Remaining);
            Count(html, "dirty pages rate (pages/s)", "ram.dirty-pages-rate", ram.DirtyPagesRate);
            Count(html, "pages per second", "ram.pages-per-second", ram.PagesPerSecond);
        }

        if (s.VfioTransferred is { } vfio)
        {
            ByteRow(html, "VFIO bytes sent", "vfio.transferred", vfio);
        }

        if (s.CpuThrottlePercentage is { } throttle)
        {
            Row(html, "vCPU throttle", "cpu-throttle-percentage", Number(throttle), Invariant($"{throttle} %"));
        }

        if (s.ErrorDescription is { } error)
        {
            Row(html, "error", "error-desc", error, error);
        }

        Row(html, "downtime-limit", null, null, Invariant($"{report.Settings.DowntimeLimitMs} ms"));
        Row(html, "max-bandwidth", null, null, report.Settings.MaxBandwidth == 0 ? "unlimited" : Rate(report.Settings.MaxBandwidth));
        Row(html, "capabilities", null, null, report.Settings.Capabilities.Count == 0 ? "none" : string.Join(", ", report.Settings.Capabilities));
        foreach (ReportNote note in report.Notes)
        {
            string mark = note.Passed switch { true => "✔ ", false => "✘ ", null => "" };
            string cls = note.Passed switch { true => " class=\"passed\"", false => " class=\"failed\"", null => "" };
            html.Append(Invariant($"<tr class=\"note\"><td>{Escape(note.Label)}</td><td{cls}>{Escape(mark + note.Value)}</td></tr>\n"));
        }

        html.Append("</tbody>\n</table>");
        return html.ToString();
    }

    private static void Ms(StringBuilder html, string label, string key, long? value)
    {
        if (value is { } v)
        {
            Row(html, label, key, Number(v), Invariant($"{v} ms"));
        }
    }

    private static void ByteRow(StringBuilder html, string label, string key, long value) =>
        Row(html, label, key, Number(value), value < 1024 ? Invariant($"{value} B") : Invariant($"{Bytes(value)} ({value} B)"));

    private static void Count(StringBuilder html, string label, string key, long value) => Row(html, label, key, Number(value), Number(value));

    private static void Row(StringBuilder html, string label, string? key, string? value, string text)
    {
        string data = key is null ? "" : Invariant($" data-key=\"{Escape(key)}\" data-value=\"{Escape(value)}\"");
        html.Append(Invariant($"<tr{data}><td>{Escape(label)}</td><td>{Escape(text)}</td></tr>\n"));
    }
}
