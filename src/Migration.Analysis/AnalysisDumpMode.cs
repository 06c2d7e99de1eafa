namespace MiniVmm.Migration.Analysis;

/// <summary>What <c>minivmm analyze</c> prints.</summary>
public enum AnalysisDumpMode
{
    /// <summary>The walk of the whole stream: header, configuration, sections, totals, vmdesc (the default).</summary>
    State,

    /// <summary>Only the vmdesc JSON from the stream's trailer.</summary>
    Desc,
}
