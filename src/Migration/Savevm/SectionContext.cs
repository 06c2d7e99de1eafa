namespace MiniVmm.Migration.Savevm;

/// <summary>The section an error happened in: its type, id and (for START/FULL) its name.</summary>
public sealed record SectionContext(SectionType Type, uint SectionId, string? IdStr = null, uint? InstanceId = null)
{
    /// <inheritdoc />
    public override string ToString()
    {
        string type = Type.ToString().ToUpperInvariant();
        return IdStr is null
            ? $"{type} section id {SectionId}"
            : $"{type} section id {SectionId} '{IdStr}' instance {InstanceId}";
    }
}
