using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// A scalar the destination must already hold (QEMU's VMSTATE_UINT32_EQUAL and friends):
/// saved like the plain scalar; on load the incoming value is compared with the local one
/// and a difference fails the load. The local value is never changed.
/// </summary>
internal sealed class EqualScalarField<T, TValue> : VMStateField<T>
    where T : class
    where TValue : struct, IEquatable<TValue>
{
    private readonly RefAccessor<T, TValue> _value;
    private readonly ScalarEncoding<TValue> _encoding;

    public EqualScalarField(
        string name,
        RefAccessor<T, TValue> value,
        ScalarEncoding<TValue> encoding,
        int sinceVersion,
        Func<T, int, bool>? exists)
        : base(name, encoding.EqualTypeName, sinceVersion, exists)
    {
        ArgumentNullException.ThrowIfNull(value);
        _value = value;
        _encoding = encoding;
    }

    protected override void SaveElement(MigrationStreamWriter stream, T state, int index, VmDescriptionWriter? vmdesc) =>
        _encoding.Put(stream, _value(state));

    protected override void LoadElement(MigrationStreamReader stream, T state, int index)
    {
        long offset = stream.Offset;
        TValue incoming = _encoding.Get(stream);
        TValue local = _value(state);
        if (!incoming.Equals(local))
        {
            throw new VMStateException(
                $"incoming value {incoming} of '{Name}' differs from the local value {local}",
                offset,
                fieldName: Name);
        }
    }
}
