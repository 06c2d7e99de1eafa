using BenchmarkDotNet.Attributes;

namespace MiniVmm.Bench;

/// <summary>Adds the <see cref="ThroughputColumn"/> (GB/s) to a benchmark class's summary.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class ThroughputColumnAttribute : ColumnConfigBaseAttribute
{
    /// <summary>Creates the attribute.</summary>
    public ThroughputColumnAttribute()
        : base(new ThroughputColumn())
    {
    }
}
