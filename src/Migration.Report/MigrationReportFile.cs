using System.Text;
using System.Text.Json;
using MiniVmm.Migration.Report.Model;
using MiniVmm.Migration.Report.Rendering;

namespace MiniVmm.Migration.Report;

/// <summary>
/// Reads and writes a report's files: the HTML page and, beside it, its data as JSON
/// (<c>report.html</c> and <c>report.json</c>). Each file is written whole under a temporary
/// name and then renamed, so a reader never sees half a file.
/// </summary>
public static class MigrationReportFile
{
    /// <summary>The largest JSON file read (a full timeline of an hour's migration is far smaller).</summary>
    public const long MaxJsonBytes = 256L << 20;

    /// <summary>The JSON path that goes with an HTML path: the same name with <c>.json</c>.</summary>
    public static string JsonPathFor(string htmlPath) => Path.ChangeExtension(htmlPath, ".json");

    /// <summary>Writes <paramref name="report"/> as JSON to <see cref="JsonPathFor"/>, then as HTML to <paramref name="htmlPath"/>.</summary>
    /// <returns>The JSON file's path.</returns>
    /// <exception cref="MigrationReportException">A file cannot be written.</exception>
    public static string Write(MigrationReport report, string htmlPath)
    {
        ArgumentNullException.ThrowIfNull(report);
        string jsonPath = JsonPathFor(Path.GetFullPath(htmlPath));
        if (string.Equals(jsonPath, Path.GetFullPath(htmlPath), StringComparison.Ordinal))
        {
            throw new MigrationReportException($"report {htmlPath}: the HTML file must not end in .json (its data goes to {jsonPath})");
        }

        WriteAtomically(jsonPath, JsonSerializer.SerializeToUtf8Bytes(report, MigrationReportJsonContext.Default.MigrationReport));
        WriteHtml(report, htmlPath);
        return jsonPath;
    }

    /// <summary>Renders <paramref name="report"/> and writes the page to <paramref name="htmlPath"/>.</summary>
    /// <exception cref="MigrationReportException">The file cannot be written.</exception>
    public static void WriteHtml(MigrationReport report, string htmlPath) =>
        WriteAtomically(Path.GetFullPath(htmlPath), Encoding.UTF8.GetBytes(HtmlReportRenderer.Render(report)));

    /// <summary>Reads a report's JSON.</summary>
    /// <exception cref="MigrationReportException">The file is missing, too big, not JSON, or not a report of a known format.</exception>
    public static MigrationReport ReadJson(string jsonPath)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(jsonPath);
            if (!info.Exists)
            {
                throw new MigrationReportException($"report data {jsonPath}: no such file");
            }

            if (info.Length > MaxJsonBytes)
            {
                throw new MigrationReportException($"report data {jsonPath}: {info.Length} bytes, more than the {MaxJsonBytes} a report may have");
            }

            bytes = File.ReadAllBytes(jsonPath);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new MigrationReportException($"report data {jsonPath}: {error.Message}", error);
        }

        MigrationReport? report;
        try
        {
            report = JsonSerializer.Deserialize(bytes, MigrationReportJsonContext.Default.MigrationReport);
        }
        catch (JsonException error)
        {
            string where = error.LineNumber is { } line ? $" at line {line + 1}, byte {error.BytePositionInLine + 1}" : "";
            string path = string.IsNullOrEmpty(error.Path) ? "" : $" ({error.Path})";
            throw new MigrationReportException($"report data {jsonPath}: not a migration report{where}{path}: {FirstLine(error.Message)}", error);
        }

        if (report is null)
        {
            throw new MigrationReportException($"report data {jsonPath}: not a migration report (null)");
        }

        if (report.FormatVersion != MigrationReport.CurrentFormatVersion)
        {
            throw new MigrationReportException(
                $"report data {jsonPath}: format version {report.FormatVersion}, this MiniVmm reads {MigrationReport.CurrentFormatVersion}");
        }

        return report;
    }

    private static string FirstLine(string text)
    {
        int end = text.IndexOfAny(['\r', '\n']);
        return end < 0 ? text : text[..end];
    }

    private static void WriteAtomically(string path, byte[] content)
    {
        string temporary = path + ".tmp";
        try
        {
            File.WriteAllBytes(temporary, content);
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // The write's error is the one worth reporting.
            }

            throw new MigrationReportException($"report {path}: cannot write it: {error.Message}", error);
        }
    }
}
