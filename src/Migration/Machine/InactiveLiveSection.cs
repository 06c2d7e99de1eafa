using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Machine;

/// <summary>
/// A live savevm entry that is registered but never active, like QEMU 7.2's <c>block</c> (block
/// migration) and <c>dirty-bitmap</c> (block dirty bitmaps) entries when their capabilities are
/// off: it takes a section id, so the entries after it get the same ids as in QEMU, but it never
/// appears in a stream it writes. A section for it in an incoming stream is refused.
/// </summary>
public sealed class InactiveLiveSection : ISaveVmHandlers, ISaveStateDevice
{
    /// <summary>Creates the entry <paramref name="idStr"/>, instance <paramref name="instanceId"/>, version <paramref name="versionId"/>.</summary>
    public InactiveLiveSection(string idStr, uint instanceId = 0, int versionId = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(idStr);
        IdStr = idStr;
        InstanceId = instanceId;
        VersionId = versionId;
    }

    /// <summary>QEMU 7.2's <c>block</c> entry (instance 0, version 1).</summary>
    public static InactiveLiveSection BlockMigration() => new("block");

    /// <summary>QEMU 7.2's <c>dirty-bitmap</c> entry (instance 0, version 1).</summary>
    public static InactiveLiveSection DirtyBitmapMigration() => new("dirty-bitmap");

    /// <summary>The section name.</summary>
    public string IdStr { get; }

    /// <summary>The instance id.</summary>
    public uint InstanceId { get; }

    /// <summary>The version.</summary>
    public int VersionId { get; }

    /// <inheritdoc />
    public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live;

    /// <summary>Registers the entry. Runs once, when the registry is built.</summary>
    public void Register(SaveStateRegistry registry) => registry.RegisterLive(IdStr, InstanceId, VersionId, this);

    /// <summary>Always false: the entry takes part in nothing. Any thread, big lock held or not.</summary>
    public bool IsActive() => false;

    /// <summary>Refuses a section sent for this entry. Destination, big lock held.</summary>
    public void LoadState(MigrationStreamReader stream, int versionId) =>
        throw new NotSupportedException($"'{IdStr}' is not active on this machine: MiniVmm has no {IdStr} migration to load");
}
