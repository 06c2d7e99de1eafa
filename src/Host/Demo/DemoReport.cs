using System.Diagnostics;
using MiniVmm.Migration.Report;
using MiniVmm.Migration.Report.Model;
using Spectre.Console;

namespace MiniVmm.Host.Demo;

/// <summary>
/// <c>demo --report</c>: the source process writes the migration report when the migration ends
/// (<c>migrate</c>'s <c>x-report</c>); the demo then adds what it checked on the destination to
/// the summary and renders the page again from the data.
/// </summary>
internal static class DemoReport
{
    /// <summary>The title the demo's report carries.</summary>
    public const string Title = "MiniVmm live migration demo";

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>Waits for the source's report at <paramref name="htmlPath"/>, adds <paramref name="notes"/> and writes it again.</summary>
    public static async Task FinishAsync(string htmlPath, IReadOnlyList<ReportNote> notes, CancellationToken cancellation)
    {
        string jsonPath = MigrationReportFile.JsonPathFor(htmlPath);
        var clock = Stopwatch.StartNew();
        // The source writes the JSON, then the HTML: once the HTML is there, both are whole.
        while (!File.Exists(htmlPath) || !File.Exists(jsonPath))
        {
            if (clock.Elapsed > Wait)
            {
                AnsiConsole.MarkupLineInterpolated($"[red]report:[/] the source wrote no report to {htmlPath} within {Wait.TotalSeconds:F0} s (see its log)");
                return;
            }

            await Task.Delay(50, cancellation).ConfigureAwait(false);
        }

        try
        {
            MigrationReport report = MigrationReportFile.ReadJson(jsonPath);
            MigrationReportFile.Write(report with { Title = Title, Notes = [.. report.Notes, .. notes] }, htmlPath);
            AnsiConsole.MarkupLineInterpolated($"report: [bold]{htmlPath}[/] (data: {jsonPath})");
        }
        catch (MigrationReportException error)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]report:[/] {error.Message}");
        }
    }
}
