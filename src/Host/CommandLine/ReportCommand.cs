using System.CommandLine;
using MiniVmm.Migration.Report;
using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Host.CommandLine;

/// <summary>
/// <c>minivmm report FILE.json [-o OUT.html]</c>: renders a migration report again from the
/// data written beside it (by <c>migrate</c>'s <c>x-report</c> or <c>demo --report</c>). A bad
/// file is one line on stderr and exit code 1.
/// </summary>
public sealed class ReportCommand : Command
{
    private readonly Argument<string> _file = new("FILE") { Description = "the report's data (the .json written beside the .html)" };
    private readonly Option<string?> _output = new("--output", "-o") { Description = "the HTML file to write (default: FILE with .html)" };

    /// <summary>Declares the command.</summary>
    public ReportCommand()
        : base("report", "Render a migration report (HTML with SVG plots) from its JSON data")
    {
        Arguments.Add(_file);
        Options.Add(_output);
        SetAction(parseResult =>
        {
            string file = parseResult.GetValue(_file)!;
            string output = parseResult.GetValue(_output) ?? Path.ChangeExtension(file, ".html");
            try
            {
                if (string.Equals(Path.GetFullPath(output), Path.GetFullPath(file), StringComparison.Ordinal))
                {
                    throw new MigrationReportException($"report: the output {output} would overwrite the data it is made from; give another with -o");
                }

                MigrationReport report = MigrationReportFile.ReadJson(file);
                MigrationReportFile.WriteHtml(report, output);
                parseResult.InvocationConfiguration.Output.WriteLine(output);
                return 0;
            }
            catch (MigrationReportException error)
            {
                parseResult.InvocationConfiguration.Error.WriteLine($"minivmm: {error.Message}");
                return 1;
            }
        });
    }
}
