namespace MiniVmm.Migration.Savevm;

/// <summary>A section's idstr and instance id, as START and FULL headers carry them.</summary>
public readonly record struct SectionName(string IdStr, uint InstanceId)
{
    /// <inheritdoc />
    public override string ToString() => $"'{IdStr}' instance {InstanceId}";
}
