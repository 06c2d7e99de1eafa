namespace MiniVmm.Migration.Report;

/// <summary>A report file could not be read or written: the message names the file and what was wrong.</summary>
public sealed class MigrationReportException(string message, Exception? inner = null) : Exception(message, inner);
