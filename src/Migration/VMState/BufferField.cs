using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// A fixed-size byte buffer written raw (QEMU's VMSTATE_BUFFER, vmdesc type "buffer"): its
/// size is the length of the storage.
/// </summary>
internal sealed class BufferField<T> : VMStateField<T>
    where T : class
{
    private readonly SpanAccessor<T, byte> _bytes;

    public BufferField(string name, SpanAccessor<T, byte> bytes, int sinceVersion, Func<T, int, bool>? exists)
        : base(name, "buffer", sinceVersion, exists)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        _bytes = bytes;
    }

    protected override void SaveElement(MigrationStreamWriter stream, T state, int index, VmDescriptionWriter? vmdesc) =>
        stream.PutBuffer(_bytes(state));

    protected override void LoadElement(MigrationStreamReader stream, T state, int index) =>
        stream.ReadExactly(_bytes(state), Name);
}
