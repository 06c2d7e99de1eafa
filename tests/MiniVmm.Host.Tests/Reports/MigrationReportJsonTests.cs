using System.Text.Json;
using MiniVmm.Host.Tests.Support;
using MiniVmm.Migration.Report;
using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Host.Tests.Reports;

/// <summary>The report's data as JSON: written beside the page, read back whole, and bad files refused with the file and place named.</summary>
[TestFixture]
public sealed class MigrationReportJsonTests
{
    private TemporaryDirectory _temp = null!;

    [SetUp]
    public void CreateDirectory() => _temp = new TemporaryDirectory();

    [TearDown]
    public void RemoveDirectory() => _temp.Dispose();

    [Test]
    public void A_report_written_and_read_back_is_the_same_report()
    {
        MigrationReport report = SyntheticReports.Make(passes: 40, throttle: 20);

        string json = MigrationReportFile.Write(report, _temp.File("r.html"));
        MigrationReport back = MigrationReportFile.ReadJson(json);

        Assert.Multiple(() =>
        {
            Assert.That(json, Is.EqualTo(_temp.File("r.json")));
            Assert.That(Serialize(back), Is.EqualTo(Serialize(report)), "every member survives the round trip");
            Assert.That(back.Passes, Has.Count.EqualTo(40));
            Assert.That(back.Switchover, Is.EqualTo(report.Switchover));
            Assert.That(File.ReadAllText(json), Does.Contain("\"reason\": \"PendingBelowThreshold\""), "enums by name");
            Assert.That(File.ReadAllText(_temp.File("r.html")), Is.EqualTo(MiniVmm.Migration.Report.Rendering.HtmlReportRenderer.Render(report)));
            Assert.That(Directory.GetFiles(_temp.Path, "*.tmp"), Is.Empty, "no temporary file left");
        });
    }

    [Test]
    public void Json_that_is_not_a_report_names_the_file_and_the_place()
    {
        string path = _temp.File("bad.json");
        File.WriteAllText(path, "{\n  \"formatVersion\": 1,\n  \"title\": [1, 2]\n}");

        var error = Assert.Throws<MigrationReportException>(() => MigrationReportFile.ReadJson(path))!;

        Assert.That(error.Message, Does.StartWith($"report data {path}: not a migration report at line 3"));
        Assert.That(error.Message, Does.Contain("$.title"));
        Assert.That(error.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void A_report_of_another_format_version_is_refused()
    {
        string json = MigrationReportFile.Write(SyntheticReports.Make(passes: 2) with { FormatVersion = 99 }, _temp.File("r.html"));

        var error = Assert.Throws<MigrationReportException>(() => MigrationReportFile.ReadJson(json))!;

        Assert.That(error.Message, Does.Contain("format version 99, this MiniVmm reads 1"));
    }

    [Test]
    public void A_missing_file_and_a_page_named_json_are_refused()
    {
        Assert.That(() => MigrationReportFile.ReadJson(_temp.File("none.json")),
            Throws.TypeOf<MigrationReportException>().With.Message.EqualTo($"report data {_temp.File("none.json")}: no such file"));
        Assert.That(() => MigrationReportFile.Write(SyntheticReports.Make(passes: 2), _temp.File("page.json")),
            Throws.TypeOf<MigrationReportException>().With.Message.Contains("must not end in .json"));
    }

    private static string Serialize(MigrationReport report) =>
        JsonSerializer.Serialize(report, MigrationReportJsonContext.Default.MigrationReport);
}
