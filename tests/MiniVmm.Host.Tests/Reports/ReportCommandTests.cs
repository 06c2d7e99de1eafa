using MiniVmm.Host.CommandLine;
using MiniVmm.Host.Tests.Support;
using MiniVmm.Migration.Report;

namespace MiniVmm.Host.Tests.Reports;

/// <summary><c>minivmm report FILE.json [-o OUT.html]</c>: renders a report from its data; a bad file is one line and exit 1.</summary>
[TestFixture]
public sealed class ReportCommandTests
{
    private TemporaryDirectory _temp = null!;

    [SetUp]
    public void CreateDirectory() => _temp = new TemporaryDirectory();

    [TearDown]
    public void RemoveDirectory() => _temp.Dispose();

    [Test]
    public async Task Without_o_the_page_goes_beside_the_data()
    {
        string json = MigrationReportFile.Write(SyntheticReports.Make(passes: 5), _temp.File("first.html"));
        File.Delete(_temp.File("first.html"));

        (int exit, string output, string error) = await RunAsync("report", json);

        Assert.That(exit, Is.EqualTo(0), error);
        Assert.That(output.Trim(), Is.EqualTo(_temp.File("first.html")));
        Assert.That(File.ReadAllText(_temp.File("first.html")), Does.Contain("<svg class=\"plot\" data-plot=\"pending\""));
    }

    [TestCase("missing.json", "no such file")]
    [TestCase("garbage.json", "not a migration report at line 1")]
    [TestCase("empty.json", "not a migration report")]
    public async Task A_bad_data_file_is_one_line_on_stderr_and_exit_1(string name, string says)
    {
        File.WriteAllText(_temp.File("garbage.json"), "{ this is not json");
        File.WriteAllText(_temp.File("empty.json"), "");

        (int exit, string output, string error) = await RunAsync("report", _temp.File(name), "-o", _temp.File("out.html"));

        Assert.That(exit, Is.EqualTo(1));
        Assert.That(output, Is.Empty);
        string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), error);
        Assert.That(lines[0], Does.StartWith($"minivmm: report data {_temp.File(name)}: ").And.Contain(says));
        Assert.That(File.Exists(_temp.File("out.html")), Is.False, "nothing written");
    }

    [Test]
    public async Task The_data_is_never_overwritten_by_the_page()
    {
        string json = MigrationReportFile.Write(SyntheticReports.Make(passes: 5), _temp.File("r.html"));
        string before = File.ReadAllText(json);

        (int exit, _, string error) = await RunAsync("report", json, "-o", json);

        Assert.That(exit, Is.EqualTo(1));
        Assert.That(error.Trim(), Does.Contain("would overwrite the data it is made from"));
        Assert.That(File.ReadAllText(json), Is.EqualTo(before));
    }

    [Test]
    public async Task In_a_real_process_a_bad_file_prints_no_stack_trace()
    {
        await using MiniVmmProcess process = MiniVmmProcess.Start("report", _temp.File("missing.json"));

        Assert.That(await process.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(process.Stderr.Trim(), Is.EqualTo($"minivmm: report data {_temp.File("missing.json")}: no such file"));
    }

    private static async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await new MiniVmmCommandLine().InvokeAsync(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }
}
