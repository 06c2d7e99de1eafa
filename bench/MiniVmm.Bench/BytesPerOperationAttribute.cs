namespace MiniVmm.Bench;

/// <summary>How many stream bytes one operation of a benchmark moves; read by <see cref="ThroughputColumn"/>.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BytesPerOperationAttribute(long bytes) : Attribute
{
    /// <summary>Bytes per operation (per counted operation when OperationsPerInvoke is set).</summary>
    public long Bytes { get; } = bytes;
}
