using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>A single bool or integer (QEMU's VMSTATE_BOOL, VMSTATE_INT32, VMSTATE_UINT64, ...).</summary>
internal sealed class ScalarField<T, TValue> : VMStateField<T>
    where T : class
    where TValue : struct, IEquatable<TValue>
{
    private readonly RefAccessor<T, TValue> _value;
    private readonly ScalarEncoding<TValue> _encoding;

    public ScalarField(
        string name,
        RefAccessor<T, TValue> value,
        ScalarEncoding<TValue> encoding,
        int sinceVersion,
        Func<T, int, bool>? exists)
        : base(name, encoding.TypeName, sinceVersion, exists)
    {
        ArgumentNullException.ThrowIfNull(value);
        _value = value;
        _encoding = encoding;
    }

    protected override void SaveElement(MigrationStreamWriter stream, T state, int index, VmDescriptionWriter? vmdesc) =>
        _encoding.Put(stream, _value(state));

    protected override void LoadElement(MigrationStreamReader stream, T state, int index) =>
        _value(state) = _encoding.Get(stream);
}
