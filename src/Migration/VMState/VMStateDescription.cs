using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// How one device's state is laid out in the migration stream (QEMU's VMStateDescription):
/// a versioned, ordered list of fields followed by optional subsections. This non-generic
/// view is what the registry and the save/load coordinator work with; descriptions are
/// built with <see cref="VMStateDescription{T}.Build"/> and are immutable.
/// </summary>
public abstract class VMStateDescription
{
    /// <summary>Byte that introduces a subsection in the stream (QEMU_VM_SUBSECTION).</summary>
    public const byte SubsectionMarker = 0x05;

    private protected VMStateDescription(
        string name,
        int versionId,
        int minimumVersionId,
        MigrationPriority priority,
        bool unmigratable,
        bool earlySetup)
    {
        Name = name;
        VersionId = versionId;
        MinimumVersionId = minimumVersionId;
        Priority = priority;
        Unmigratable = unmigratable;
        EarlySetup = earlySetup;
    }

    /// <summary>The description's name ("vmsd_name" in the vmdesc; for a subsection, its name in the stream).</summary>
    public string Name { get; }

    /// <summary>The version this side saves.</summary>
    public int VersionId { get; }

    /// <summary>The oldest incoming version this side can load.</summary>
    public int MinimumVersionId { get; }

    /// <summary>Where the device goes in the save order.</summary>
    public MigrationPriority Priority { get; }

    /// <summary>True when a device with this description blocks migration.</summary>
    public bool Unmigratable { get; }

    /// <summary>True when the state is sent during migration setup rather than at switchover.</summary>
    public bool EarlySetup { get; }

    /// <summary>The type of the state object the description reads and writes.</summary>
    public abstract Type StateType { get; }

    /// <summary>The subsections, in the order they are saved.</summary>
    public abstract IReadOnlyList<VMStateDescription> Subsections { get; }

    /// <summary>The fields, in stream order.</summary>
    public abstract IReadOnlyList<VMStateFieldInfo> Fields { get; }

    /// <summary>
    /// Whether the state must be sent at all; a top-level description that is not needed is
    /// left out of the stream entirely.
    /// </summary>
    /// <param name="opaque">The device's state object (of <see cref="StateType"/>).</param>
    public abstract bool IsNeeded(object opaque);

    /// <summary>
    /// Writes the body (fields, then the needed subsections) at the description's own
    /// version. When <paramref name="vmdesc"/> is given, the members "vmsd_name",
    /// "version", "fields" and (if any subsection is sent) "subsections" are added to the
    /// JSON object the caller has open, exactly as QEMU 7.2 writes them.
    /// </summary>
    /// <param name="stream">Where the body goes.</param>
    /// <param name="opaque">The device's state object (of <see cref="StateType"/>).</param>
    /// <param name="vmdesc">The device description being built, or null.</param>
    /// <exception cref="VMStateException">A hook or a field failed.</exception>
    public abstract void Save(MigrationStreamWriter stream, object opaque, VmDescriptionWriter? vmdesc);

    /// <summary>
    /// Reads a body written at <paramref name="versionId"/> into <paramref name="opaque"/>:
    /// fields, then any subsections present, then the post-load hook.
    /// </summary>
    /// <param name="stream">Where the body comes from.</param>
    /// <param name="opaque">The device's state object (of <see cref="StateType"/>).</param>
    /// <param name="versionId">The version the source saved (from the section header).</param>
    /// <exception cref="VMStateException">The version is not supported, a hook or a field failed, or an unknown subsection was found.</exception>
    public abstract void Load(MigrationStreamReader stream, object opaque, int versionId);

    /// <inheritdoc/>
    public override string ToString() => $"{Name} (version {VersionId}, minimum {MinimumVersionId})";
}
