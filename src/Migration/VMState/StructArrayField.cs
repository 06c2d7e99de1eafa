using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// An array of nested objects sharing one description (QEMU's VMSTATE_STRUCT_ARRAY, vmdesc
/// type "struct"): every element of the list, or the first N with N the value of an earlier
/// field (QEMU's VMSTATE_STRUCT_VARRAY_*).
/// </summary>
internal sealed class StructArrayField<T, TChild> : VMStateField<T>
    where T : class
    where TChild : class
{
    private readonly Func<T, IReadOnlyList<TChild>> _elements;
    private readonly VMStateDescription<TChild> _description;
    private readonly Func<T, long>? _count;

    /// <summary>Creates the field.</summary>
    /// <param name="name">The field's name.</param>
    /// <param name="elements">The elements' storage in the state object.</param>
    /// <param name="description">How one element is written.</param>
    /// <param name="count">Element count (from an earlier field), or null for the whole list.</param>
    /// <param name="sinceVersion">The first version that has the field.</param>
    /// <param name="exists">Whether the field is in a stream of a given version, when not only by version.</param>
    public StructArrayField(
        string name,
        Func<T, IReadOnlyList<TChild>> elements,
        VMStateDescription<TChild> description,
        Func<T, long>? count,
        int sinceVersion,
        Func<T, int, bool>? exists)
        : base(name, "struct", sinceVersion, exists)
    {
        ArgumentNullException.ThrowIfNull(elements);
        ArgumentNullException.ThrowIfNull(description);
        _elements = elements;
        _description = description;
        _count = count;
    }

    public override bool IsStruct => true;

    public override bool IsCompressible => base.IsCompressible && _description.IsCompressible;

    protected override int ElementCountForSave(MigrationStreamWriter stream, T state) => CountOf(state, stream.BytesWritten);

    protected override int ElementCountForLoad(MigrationStreamReader stream, T state) => CountOf(state, stream.Offset);

    protected override void SaveElement(MigrationStreamWriter stream, T state, int index, VmDescriptionWriter? vmdesc) =>
        _description.SaveState(stream, ElementOf(state, index), vmdesc, _description.VersionId);

    protected override void LoadElement(MigrationStreamReader stream, T state, int index) =>
        _description.LoadState(stream, ElementOf(state, index), _description.VersionId);

    private int CountOf(T state, long offset)
    {
        int capacity = _elements(state).Count;
        return _count is null ? capacity : ElementCount.Checked(_count(state), capacity, Name, offset);
    }

    private TChild ElementOf(T state, int index) =>
        _elements(state)[index] ?? throw new InvalidOperationException($"element {index} of struct array '{Name}' is null");
}
