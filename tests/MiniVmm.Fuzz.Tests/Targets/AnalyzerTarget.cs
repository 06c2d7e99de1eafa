using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.Migration.Analysis;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Fuzz.Tests.Targets;

/// <summary>
/// What <c>minivmm analyze FILE [--dump state|desc]</c> runs: the stream walk, then both JSON
/// dumps. Bad streams must never throw; the walk's error must be a typed stream error with an
/// offset and no runtime fault inside (the analyzer turns anything unexpected into an "internal
/// analyzer error", which this target counts as a finding).
/// </summary>
internal sealed class AnalyzerTarget(IReadOnlyList<FuzzSeed> seeds) : IFuzzTarget
{
    public string Name => "analyzer";

    public IReadOnlyList<FuzzSeed> Seeds => seeds;

    public bool BigEndianLengths => true;

    public TimeSpan CaseTimeout => TimeSpan.FromSeconds(20);

    public string? LastRejection { get; private set; }

    public CaseOutcome Run(byte[] input)
    {
        LastRejection = null;
        StreamAnalysis analysis = MigrationStreamAnalyzer.Analyze(new MemoryStream(input, writable: false));
        if (analysis.Error is { } error)
        {
            ErrorRules.RequireStreamError(error, "the analysis", typeof(MigrationStreamException));
            LastRejection = error.Message;
        }

        int state = AnalyzeCommand.Run(new MemoryStream(input, writable: false), AnalysisDumpMode.State, TextWriter.Null);
        int desc = AnalyzeCommand.Run(new MemoryStream(input, writable: false), AnalysisDumpMode.Desc, TextWriter.Null);
        if (state != (analysis.Succeeded ? AnalysisExitCode.Success : AnalysisExitCode.BadStream))
        {
            throw new FuzzFinding($"analyze --dump state exited {state}, but the walk {(analysis.Succeeded ? "succeeded" : "failed")}");
        }

        if (desc is not (AnalysisExitCode.Success or AnalysisExitCode.BadStream))
        {
            throw new FuzzFinding($"analyze --dump desc exited {desc}");
        }

        return analysis.Succeeded ? CaseOutcome.Accepted : CaseOutcome.Rejected;
    }

    public void Dispose()
    {
    }
}
