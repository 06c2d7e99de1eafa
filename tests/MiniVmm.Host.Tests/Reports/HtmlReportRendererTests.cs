using System.Xml.Linq;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Report.Model;
using MiniVmm.Migration.Report.Rendering;

namespace MiniVmm.Host.Tests.Reports;

/// <summary>The page <see cref="HtmlReportRenderer"/> makes: one SVG per plot with its series, the switchover marked and explained, no network.</summary>
[TestFixture]
public sealed class HtmlReportRendererTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Test]
    public void Every_plot_is_one_svg_with_its_series()
    {
        string html = HtmlReportRenderer.Render(SyntheticReports.Make());
        var plots = ReportHtml.Plots(html).ToDictionary(p => p.Name, p => ReportHtml.Series(p.Svg));

        Assert.That(plots.Keys, Is.EquivalentTo(new[] { "pending", "rates", "section-bytes", "pass-bytes", "throttle", "timeline" }));
        Assert.Multiple(() =>
        {
            Assert.That(plots["pending"], Is.EqualTo(new[] { "pending", "threshold" }));
            Assert.That(plots["rates"], Is.EqualTo(new[] { "bandwidth", "dirty-rate" }));
            Assert.That(plots["section-bytes"], Is.EqualTo(new[] { "ram", "vfio", "harness", "other" }));
            Assert.That(plots["pass-bytes"], Is.EqualTo(new[] { "ram", "vfio", "harness", "other" }));
            Assert.That(plots["throttle"], Is.EqualTo(new[] { "throttle" }));
            Assert.That(plots["timeline"], Is.EqualTo(new[] { "status", "run-state", "phase", "vfio:gpu0", "vfio:nic0", "harness" }));
        });
    }

    [Test]
    public void The_switchover_is_marked_on_every_time_plot_and_its_reason_is_stated()
    {
        string html = HtmlReportRenderer.Render(SyntheticReports.Make());
        var plots = ReportHtml.Plots(html);

        foreach ((string name, XElement svg) in plots)
        {
            Assert.That(svg.Descendants(Svg + "g").Count(g => (string?)g.Attribute("class") == "switchover-marker"), Is.EqualTo(1), name);
        }

        Assert.That(html, Does.Contain("data-reason=\"PendingBelowThreshold\""));
        Assert.That(html, Does.Contain("pending 3.1 MiB ≤ threshold 9.4 MiB (31.3 MiB/s measured bandwidth × 300 ms downtime-limit)"));
        Assert.That(html, Does.Contain("in pass 300"));
    }

    [TestCase(SwitchoverReason.NothingPending, 0L, "nothing was left to send (pending 0 B).")]
    [TestCase(SwitchoverReason.IterationStalled, 20L << 20, "forced — pending 20 MiB was still above the threshold 9.4 MiB, but another pass could not make it smaller")]
    public void Each_reason_reads_as_what_happened(SwitchoverReason reason, long pending, string says)
    {
        MigrationReport report = SyntheticReports.Make(passes: 4);
        report = report with { Switchover = report.Switchover! with { Reason = reason, PendingBytes = pending } };

        string html = HtmlReportRenderer.Render(report);

        Assert.That(html, Does.Contain($"data-reason=\"{reason}\""));
        Assert.That(html, Does.Contain("Switched over at ").And.Contain(says));
    }

    [Test]
    public void Hundreds_of_tiny_passes_are_summed_into_a_readable_number_of_bars()
    {
        string html = HtmlReportRenderer.Render(SyntheticReports.Make(passes: 300));
        XElement passPlot = ReportHtml.Plots(html).Single(p => p.Name == "pass-bytes").Svg;
        XElement ram = passPlot.Descendants(Svg + "g").Single(g => (string?)g.Attribute("data-series") == "ram");

        int bars = ram.Elements(Svg + "rect").Count();
        Assert.That(bars, Is.InRange(2, 40), "one bar per run of passes");
        Assert.That(html, Does.Contain("300 passes, summed in runs of 8"));
        Assert.That(passPlot.Descendants(Svg + "text").Select(t => t.Value), Does.Contain("1–8"));
    }

    [Test]
    public void A_dirty_rate_of_zero_is_said_plainly()
    {
        string zero = HtmlReportRenderer.Render(SyntheticReports.Make(passes: 3, dirtyRate: false));
        string some = HtmlReportRenderer.Render(SyntheticReports.Make(passes: 3, dirtyRate: true));

        Assert.That(zero, Does.Contain("The dirty rate was 0 in every sample"));
        Assert.That(some, Does.Not.Contain("The dirty rate was 0 in every sample"));
    }

    [Test]
    public void Auto_converge_throttle_is_plotted_and_named_in_the_reason()
    {
        string html = HtmlReportRenderer.Render(SyntheticReports.Make(passes: 10, throttle: 40));
        XElement throttle = ReportHtml.Plots(html).Single(p => p.Name == "throttle").Svg;

        Assert.That(html, Does.Contain("Auto-converge was throttling the vCPUs to 40 %"));
        Assert.That(throttle.Descendants(Svg + "text").Select(t => t.Value), Does.Contain("40 %"), "the axis reaches the throttle");
    }

    [Test]
    public void A_failed_migration_says_why_there_was_no_switchover()
    {
        MigrationReport failed = SyntheticReports.Make(passes: 2) with
        {
            Switchover = null,
            Summary = new ReportSummary("failed", null, null, null, null, null, null, "Connection refused"),
        };

        string html = HtmlReportRenderer.Render(failed);

        Assert.That(html, Does.Contain("No switchover: the migration failed before it switched over (Connection refused)."));
        Assert.That(ReportHtml.SummaryValues(html)["error-desc"], Is.EqualTo("Connection refused"));
        Assert.That(ReportHtml.Plots(html), Has.Count.EqualTo(6), "the plots are still drawn");
    }

    [Test]
    public void The_page_fetches_nothing_and_runs_no_script()
    {
        string html = HtmlReportRenderer.Render(SyntheticReports.Make());

        Assert.That(html, Does.Contain("Content-Security-Policy\" content=\"default-src 'none'"));
        Assert.That(html, Does.Not.Contain("<script"));
        Assert.That(html, Does.Not.Match("(src|href)=\"(https?:)?//"));
    }

    [Test]
    public void Text_from_the_data_is_escaped()
    {
        MigrationReport report = SyntheticReports.Make(passes: 2) with
        {
            Title = "<b>x</b>",
            Notes = [new ReportNote("<script>alert(1)</script>", "a & b")],
        };

        string html = HtmlReportRenderer.Render(report);

        Assert.That(html, Does.Not.Contain("<script>"));
        Assert.That(html, Does.Contain("&lt;script&gt;alert(1)&lt;/script&gt;"));
        Assert.That(html, Does.Contain("a &amp; b"));
    }
}
