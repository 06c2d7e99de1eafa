namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>One thing the fuzzer feeds: its seeds, how its lengths are encoded, and one case.</summary>
internal interface IFuzzTarget : IDisposable
{
    /// <summary>The target's name, in messages and failure file names.</summary>
    string Name { get; }

    /// <summary>The unmutated inputs real writers produced; each must be <see cref="CaseOutcome.Accepted"/>.</summary>
    IReadOnlyList<FuzzSeed> Seeds { get; }

    /// <summary>Whether length fields in this format are big-endian (the migration stream) or little-endian (the harness frames).</summary>
    bool BigEndianLengths { get; }

    /// <summary>How long one case may take before it counts as a hang.</summary>
    TimeSpan CaseTimeout { get; }

    /// <summary>
    /// Runs one input. Throws <see cref="FuzzFinding"/> when the target breaks a rule; any other
    /// exception that escapes is a finding too.
    /// </summary>
    CaseOutcome Run(byte[] input);

    /// <summary>Why the last case was <see cref="CaseOutcome.Rejected"/>, for messages.</summary>
    string? LastRejection { get; }
}
