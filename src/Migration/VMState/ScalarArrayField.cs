using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// An array of bools or integers: either every element of the storage (QEMU's
/// VMSTATE_*_ARRAY) or the first N, with N the value of an earlier field (QEMU's
/// VMSTATE_VARRAY_*; the count itself is not written by this field).
/// </summary>
internal sealed class ScalarArrayField<T, TValue> : VMStateField<T>
    where T : class
    where TValue : struct, IEquatable<TValue>
{
    private readonly SpanAccessor<T, TValue> _elements;
    private readonly ScalarEncoding<TValue> _encoding;
    private readonly Func<T, long>? _count;

    /// <summary>Creates the field.</summary>
    /// <param name="name">The field's name.</param>
    /// <param name="elements">The elements' storage in the state object.</param>
    /// <param name="encoding">How one element is written.</param>
    /// <param name="count">Element count (from an earlier field), or null for the whole storage.</param>
    /// <param name="sinceVersion">The first version that has the field.</param>
    /// <param name="exists">Whether the field is in a stream of a given version, when not only by version.</param>
    public ScalarArrayField(
        string name,
        SpanAccessor<T, TValue> elements,
        ScalarEncoding<TValue> encoding,
        Func<T, long>? count,
        int sinceVersion,
        Func<T, int, bool>? exists)
        : base(name, encoding.TypeName, sinceVersion, exists)
    {
        ArgumentNullException.ThrowIfNull(elements);
        _elements = elements;
        _encoding = encoding;
        _count = count;
    }

    protected override int ElementCountForSave(MigrationStreamWriter stream, T state) => CountOf(state, stream.BytesWritten);

    protected override int ElementCountForLoad(MigrationStreamReader stream, T state) => CountOf(state, stream.Offset);

    protected override void SaveElement(MigrationStreamWriter stream, T state, int index, VmDescriptionWriter? vmdesc) =>
        _encoding.Put(stream, _elements(state)[index]);

    protected override void LoadElement(MigrationStreamReader stream, T state, int index) =>
        _elements(state)[index] = _encoding.Get(stream);

    private int CountOf(T state, long offset)
    {
        int capacity = _elements(state).Length;
        return _count is null ? capacity : ElementCount.Checked(_count(state), capacity, Name, offset);
    }
}
