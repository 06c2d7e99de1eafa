namespace MiniVmm.Migration.Analysis;

/// <summary>The exit codes <see cref="AnalyzeCommand"/> returns.</summary>
public static class AnalysisExitCode
{
    /// <summary>The stream was walked to its end (and, for a state dump, every section decoded).</summary>
    public const int Success = 0;

    /// <summary>The stream is malformed or truncated; the JSON carries an "error" member.</summary>
    public const int BadStream = 1;

    /// <summary>The input could not be opened or read at all.</summary>
    public const int CannotRead = 2;
}
