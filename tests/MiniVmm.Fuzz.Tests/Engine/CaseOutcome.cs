namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>How a target took one input that broke no rule.</summary>
internal enum CaseOutcome
{
    /// <summary>The input was taken as valid (loaded, parsed, answered).</summary>
    Accepted,

    /// <summary>The input was refused with one of the target's documented, typed errors.</summary>
    Rejected,
}
