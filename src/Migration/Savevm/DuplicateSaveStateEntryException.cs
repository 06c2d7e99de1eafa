namespace MiniVmm.Migration.Savevm;

/// <summary>
/// A registration whose (idstr, instance id) is already taken (QEMU ≥ 8.2 exits here with
/// "Detected duplicate SaveStateEntry").
/// </summary>
public sealed class DuplicateSaveStateEntryException(SaveStateEntry existing, string idStr, uint instanceId)
    : InvalidOperationException(
        $"Detected duplicate SaveStateEntry: id={idStr}, instance_id=0x{instanceId:x} " +
        $"(already registered as section {existing.SectionId} by {existing.Owner.GetType().Name})")
{
    /// <summary>The entry that holds the name.</summary>
    public SaveStateEntry Existing { get; } = existing;
}
