using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// One entry of the savevm registry (QEMU's <c>SaveStateEntry</c>): a live handler set or a
/// VMState description with its state object, under a section name and instance id.
/// Created only by <see cref="SaveStateRegistry"/>.
/// </summary>
public sealed class SaveStateEntry
{
    internal SaveStateEntry(
        string idStr,
        uint instanceId,
        int versionId,
        int sectionId,
        MigrationPriority priority,
        ISaveVmHandlers? handlers,
        VMStateDescription? vmsd,
        object owner,
        int aliasId,
        SectionName? compat)
    {
        IdStr = idStr;
        InstanceId = instanceId;
        VersionId = versionId;
        SectionId = sectionId;
        Priority = priority;
        Handlers = handlers;
        Vmsd = vmsd;
        Owner = owner;
        AliasId = aliasId;
        Compat = compat;
    }

    /// <summary>The section name written in START and FULL headers (at most 255 bytes).</summary>
    public string IdStr { get; }

    /// <summary>Distinguishes entries with the same <see cref="IdStr"/>.</summary>
    public uint InstanceId { get; }

    /// <summary>An alternative instance id accepted on load, or -1.</summary>
    public int AliasId { get; }

    /// <summary>The version this side writes and the newest it accepts.</summary>
    public int VersionId { get; }

    /// <summary>The id this side writes in section headers and footers; never reused.</summary>
    public int SectionId { get; }

    /// <summary>Orders the registry: higher priorities are saved and loaded first.</summary>
    public MigrationPriority Priority { get; }

    /// <summary>The live handlers, for entries made by <see cref="SaveStateRegistry.RegisterLive"/>.</summary>
    public ISaveVmHandlers? Handlers { get; }

    /// <summary>The VMState description, for entries made by <see cref="SaveStateRegistry.RegisterVMState"/>.</summary>
    public VMStateDescription? Vmsd { get; }

    /// <summary>QEMU's opaque: the handler object or the state object the description reads and writes.</summary>
    public object Owner { get; }

    /// <summary>The name and instance a device-path-prefixed entry was known by before, accepted on load.</summary>
    public SectionName? Compat { get; }

    /// <summary>What the entry's sections carry (its handlers' <see cref="ISaveVmHandlers.Kind"/>; VMState entries are <see cref="SectionKind.Other"/>).</summary>
    public SectionKind Kind => Handlers?.Kind ?? SectionKind.Other;

    /// <summary>Whether the entry has a START section (QEMU's <c>is_ram</c>: a save_setup callback).</summary>
    public bool IsIterable => Has(SaveVmHandlerFeatures.SaveSetup);

    /// <summary>Whether the entry is active (<c>is_active</c>; entries without handlers always are).</summary>
    public bool IsActive() => Handlers?.IsActive() ?? true;

    /// <summary>Whether the live handlers implement a stream-shaping callback.</summary>
    public bool Has(SaveVmHandlerFeatures feature) => Handlers is { } h && (h.Features & feature) == feature;

    /// <summary>Whether the entry gets a FULL section at completion: a VMState or a save_state callback.</summary>
    public bool HasFullSection => Vmsd is not null || Has(SaveVmHandlerFeatures.SaveState);

    /// <inheritdoc />
    public override string ToString() => $"'{IdStr}' instance {InstanceId} (section {SectionId})";
}
