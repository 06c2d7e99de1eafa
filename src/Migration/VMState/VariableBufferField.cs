using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// A byte buffer whose length is the value of an earlier field (QEMU's VMSTATE_VBUFFER,
/// vmdesc type "buffer"): the first <c>size</c> bytes of the storage are written raw. On
/// load the size (already loaded from the stream) must fit the storage's capacity.
/// </summary>
internal sealed class VariableBufferField<T> : VMStateField<T>
    where T : class
{
    private readonly SpanAccessor<T, byte> _storage;
    private readonly Func<T, long> _size;

    public VariableBufferField(
        string name,
        SpanAccessor<T, byte> storage,
        Func<T, long> size,
        int sinceVersion,
        Func<T, int, bool>? exists)
        : base(name, "buffer", sinceVersion, exists)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(size);
        _storage = storage;
        _size = size;
    }

    protected override void SaveElement(MigrationStreamWriter stream, T state, int index, VmDescriptionWriter? vmdesc)
    {
        Span<byte> storage = _storage(state);
        int size = ElementCount.CheckedSize(_size(state), storage.Length, Name, stream.BytesWritten);
        stream.PutBuffer(storage[..size]);
    }

    protected override void LoadElement(MigrationStreamReader stream, T state, int index)
    {
        Span<byte> storage = _storage(state);
        int size = ElementCount.CheckedSize(_size(state), storage.Length, Name, stream.Offset);
        stream.ReadExactly(storage[..size], Name);
    }
}
