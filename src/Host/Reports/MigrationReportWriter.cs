using Microsoft.Extensions.Logging;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Report;
using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Host.Reports;

/// <summary>
/// Writes the report of an outgoing migration (<c>migrate</c>'s <c>x-report</c>) once it has
/// finished — completed, failed or cancelled — as HTML with its JSON beside it. Writing runs on
/// a pool thread after the migration thread has cleaned up; disposing waits for reports still
/// being written for migrations that have ended, so a <c>quit</c> right after the migration does not lose one.
/// </summary>
public sealed partial class MigrationReportWriter(ILogger<MigrationReportWriter> logger) : IDisposable
{
    /// <summary>How long disposing waits for reports still being written.</summary>
    private static readonly TimeSpan DisposeWait = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly List<(MigrationSession Session, Task Write)> _pending = [];
    private int _disposed;

    /// <summary>
    /// Checks that a report can go to <paramref name="htmlPath"/> before the migration starts:
    /// its folder exists and it does not end in <c>.json</c> (the data's name).
    /// </summary>
    /// <returns>The full path.</returns>
    /// <exception cref="ArgumentException">It cannot; the message names the path and why.</exception>
    public static string CheckPath(string htmlPath)
    {
        if (string.IsNullOrWhiteSpace(htmlPath))
        {
            throw new ArgumentException("x-report: the path is empty");
        }

        string full = Path.GetFullPath(htmlPath);
        if (string.Equals(Path.GetExtension(full), ".json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"x-report: '{htmlPath}' ends in .json, the name its data gets; give the HTML file's name");
        }

        if (Path.GetDirectoryName(full) is not { } directory || !Directory.Exists(directory))
        {
            throw new ArgumentException($"x-report: the folder of '{htmlPath}' does not exist");
        }

        return full;
    }

    /// <summary>Writes <paramref name="session"/>'s report to <paramref name="htmlPath"/> once it has finished. Any thread.</summary>
    /// <param name="session">The migration just started.</param>
    /// <param name="capabilities">The capabilities it runs with.</param>
    /// <param name="uri">Where it goes.</param>
    /// <param name="htmlPath">The page's path (checked with <see cref="CheckPath"/>); the JSON goes beside it.</param>
    public void WriteWhenFinished(MigrationSession session, MigrationCapabilities capabilities, string uri, string htmlPath)
    {
        ArgumentNullException.ThrowIfNull(session);
        Task write = session.Finished.ContinueWith(
            _ => Write(session, capabilities, uri, htmlPath),
            CancellationToken.None,
            TaskContinuationOptions.RunContinuationsAsynchronously,
            TaskScheduler.Default);
        lock (_gate)
        {
            _pending.RemoveAll(p => p.Write.IsCompleted);
            _pending.Add((session, write));
        }
    }

    private void Write(MigrationSession session, MigrationCapabilities capabilities, string uri, string htmlPath)
    {
        try
        {
            MigrationReport report = MigrationReportBuilder.FromSession(session, capabilities, uri);
            string json = MigrationReportFile.Write(report, htmlPath);
            LogWritten(htmlPath, json);
        }
        catch (Exception error)
        {
            // Whatever went wrong, the migration is over and the VM goes on: a report is worth a log line, not a crash.
            LogFailed(error is MigrationReportException ? error.Message : $"report {htmlPath}: {error.Message}");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Task[] pending;
        lock (_gate)
        {
            // A migration still running is cancelled after this (the coordinator goes later):
            // only the reports of ended migrations are worth the wait.
            pending = [.. _pending.Where(p => p.Session.Finished.IsCompleted).Select(p => p.Write)];
        }

        Task.WaitAll(pending, DisposeWait);
    }

    [LoggerMessage(EventId = 3601, Level = LogLevel.Information, Message = "migration report written to {Path} (data in {JsonPath})")]
    private partial void LogWritten(string path, string jsonPath);

    [LoggerMessage(EventId = 3602, Level = LogLevel.Error, Message = "could not write the migration report: {Reason}")]
    private partial void LogFailed(string reason);
}
