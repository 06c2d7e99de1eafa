using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// Everything the analyzer learned from one migration stream, in stream order, up to the end
/// or up to the first problem (<see cref="Error"/>).
/// </summary>
public sealed class StreamAnalysis
{
    private readonly List<AnalyzedSection> _sections = [];

    internal StreamAnalysis(long streamLength)
    {
        StreamLength = streamLength;
    }

    /// <summary>Length of the whole stream in bytes.</summary>
    public long StreamLength { get; }

    /// <summary>The be32 magic, once read (<see cref="StreamHeader.Magic"/> in a good stream).</summary>
    public uint? Magic { get; internal set; }

    /// <summary>The be32 stream version, once read.</summary>
    public uint? Version { get; internal set; }

    /// <summary>The configuration section, once read.</summary>
    public MachineConfiguration? Configuration { get; internal set; }

    /// <summary>Offset of the configuration section's type byte, or −1.</summary>
    public long ConfigurationOffset { get; internal set; } = -1;

    /// <summary>Size of the configuration section including its type byte.</summary>
    public long ConfigurationSize { get; internal set; }

    /// <summary>The sections and commands, in stream order; the last one may be incomplete after an error.</summary>
    public IReadOnlyList<AnalyzedSection> Sections => _sections;

    /// <summary>The RAM records of all RAM sections together.</summary>
    public RamRecordCounts RamTotals { get; } = new();

    /// <summary>Offset of the EOF byte, once reached.</summary>
    public long? EofOffset { get; internal set; }

    /// <summary>The vmdesc trailer, when the stream has a good one.</summary>
    public VmDescriptionTrailer? VmDescription { get; internal set; }

    /// <summary>Why the walk stopped early, or null when the whole stream was understood.</summary>
    public MigrationStreamException? Error { get; internal set; }

    /// <summary>True when the whole stream was walked without a problem.</summary>
    public bool Succeeded => Error is null;

    internal void Add(AnalyzedSection section) => _sections.Add(section);
}
