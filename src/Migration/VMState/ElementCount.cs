namespace MiniVmm.Migration.VMState;

/// <summary>
/// Checks element counts and sizes taken from a device's state (and so, on load, from the
/// stream) against the capacity of the storage they describe, before anything is read,
/// written or allocated.
/// </summary>
internal static class ElementCount
{
    /// <summary>
    /// The count of a counted array (QEMU's VARRAY_*), read from an earlier field. A negative
    /// count means no elements, as for QEMU's signed counts; more than
    /// <paramref name="capacity"/> is an error.
    /// </summary>
    public static int Checked(long count, int capacity, string fieldName, long offset)
    {
        if (count <= 0)
        {
            return 0;
        }

        if (count > capacity)
        {
            throw new VMStateException(
                $"element count {count} of field '{fieldName}' exceeds its capacity of {capacity} elements",
                offset,
                fieldName: fieldName);
        }

        return (int)count;
    }

    /// <summary>
    /// The byte size of a variable buffer (QEMU's VBUFFER), read from an earlier field: it
    /// must lie between 0 and <paramref name="capacity"/>.
    /// </summary>
    public static int CheckedSize(long size, int capacity, string fieldName, long offset)
    {
        if (size < 0 || size > capacity)
        {
            throw new VMStateException(
                $"size {size} of buffer '{fieldName}' is outside 0..{capacity} (the buffer's capacity)",
                offset,
                fieldName: fieldName);
        }

        return (int)size;
    }
}
