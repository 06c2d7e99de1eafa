using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// Bytes kept in the stream for compatibility but no longer used (QEMU's VMSTATE_UNUSED,
/// field name "unused", vmdesc type "unused_buffer"): zeros are written, and the bytes are
/// skipped on load whatever they hold.
/// </summary>
internal sealed class UnusedField<T> : VMStateField<T>
    where T : class
{
    public const string FieldName = "unused";

    private const int ZeroChunk = 256;

    private readonly int _size;

    public UnusedField(int size, int sinceVersion)
        : base(FieldName, "unused_buffer", sinceVersion, exists: null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        _size = size;
    }

    protected override void SaveElement(MigrationStreamWriter stream, T state, int index, VmDescriptionWriter? vmdesc)
    {
        ReadOnlySpan<byte> zeros = stackalloc byte[ZeroChunk];
        for (int remaining = _size; remaining > 0; remaining -= ZeroChunk)
        {
            stream.PutBuffer(zeros[..Math.Min(remaining, ZeroChunk)]);
        }
    }

    protected override void LoadElement(MigrationStreamReader stream, T state, int index) => stream.Skip(_size);
}
