using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// A nested object described by its own description (QEMU's VMSTATE_STRUCT, vmdesc type
/// "struct"): saved and loaded with that description's own current version, including its
/// subsections and hooks.
/// </summary>
internal sealed class StructField<T, TChild> : VMStateField<T>
    where T : class
    where TChild : class
{
    private readonly Func<T, TChild> _child;
    private readonly VMStateDescription<TChild> _description;

    public StructField(
        string name,
        Func<T, TChild> child,
        VMStateDescription<TChild> description,
        int sinceVersion,
        Func<T, int, bool>? exists)
        : base(name, "struct", sinceVersion, exists)
    {
        ArgumentNullException.ThrowIfNull(child);
        ArgumentNullException.ThrowIfNull(description);
        _child = child;
        _description = description;
    }

    public override bool IsStruct => true;

    public override bool IsCompressible => base.IsCompressible && _description.IsCompressible;

    protected override void SaveElement(MigrationStreamWriter stream, T state, int index, VmDescriptionWriter? vmdesc) =>
        _description.SaveState(stream, ChildOf(state), vmdesc, _description.VersionId);

    protected override void LoadElement(MigrationStreamReader stream, T state, int index) =>
        _description.LoadState(stream, ChildOf(state), _description.VersionId);

    private TChild ChildOf(T state) =>
        _child(state) ?? throw new InvalidOperationException($"the object of struct field '{Name}' is null");
}
