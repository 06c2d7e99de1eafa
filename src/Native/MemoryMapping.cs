namespace MiniVmm.Native;

/// <summary>
/// A region mapped with mmap(2) and unmapped with munmap(2) on <see cref="Dispose"/>.
/// There is deliberately no finalizer: spans and pointers into the region do not keep this object
/// alive, so unmapping happens only when the owner says so.
/// </summary>
public sealed unsafe class MemoryMapping : IDisposable
{
    private nint _address;

    private MemoryMapping(nint address, long length)
    {
        _address = address;
        Length = length;
    }

    /// <summary>The first byte of the mapping.</summary>
    public byte* Pointer => (byte*)Address;

    /// <summary>The start address of the mapping.</summary>
    public nint Address
    {
        get
        {
            nint current = Volatile.Read(ref _address);
            ObjectDisposedException.ThrowIf(current == 0, this);
            return current;
        }
    }

    /// <summary>The length of the mapping in bytes.</summary>
    public long Length { get; }

    /// <summary>Whether <see cref="Dispose"/> has unmapped the region.</summary>
    public bool IsDisposed => Volatile.Read(ref _address) == 0;

    /// <summary>Maps <paramref name="length"/> bytes of <paramref name="file"/> from <paramref name="offset"/>.</summary>
    /// <param name="file">The file to map, or null for anonymous memory (MAP_ANONYMOUS is then implied).</param>
    /// <param name="offset">Page-aligned offset in the file.</param>
    /// <param name="length">Length in bytes.</param>
    /// <param name="protection">Access allowed to the pages.</param>
    /// <param name="flags">Must include <see cref="MappingFlags.Shared"/> or <see cref="MappingFlags.Private"/>.</param>
    public static MemoryMapping Map(
        FileDescriptorHandle? file, long offset, long length, MemoryProtection protection, MappingFlags flags)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        nint result;
        if (file is null)
        {
            flags |= MappingFlags.Anonymous;
            result = LibC.mmap(0, (nuint)length, (int)protection, (int)flags, -1, offset);
        }
        else
        {
            result = LibC.mmap(0, (nuint)length, (int)protection, (int)flags, file, offset);
        }
        if (result == -1)
        {
            string source = file is null ? "anonymous" : file.ToString();
            throw NativeCallException.FromLastError("mmap", $"{source}, offset {offset}, length {length}, {protection}, {flags}");
        }
        return new MemoryMapping(result, length);
    }

    /// <summary>A span over <paramref name="length"/> bytes at <paramref name="offset"/>; valid until disposal.</summary>
    public Span<byte> GetSpan(long offset, int length)
    {
        CheckRange(offset, length);
        return new Span<byte>(Pointer + offset, length);
    }

    /// <summary>Gives the kernel advice about a page-aligned range (madvise(2)).</summary>
    public void Advise(long offset, long length, MemoryAdvice advice)
    {
        CheckRange(offset, length);
        if (LibC.madvise(Address + (nint)offset, (nuint)length, (int)advice) < 0)
        {
            throw NativeCallException.FromLastError("madvise", $"offset {offset}, length {length}, {advice}");
        }
    }

    /// <summary>Unmaps the region; later calls do nothing.</summary>
    public void Dispose()
    {
        nint old = Interlocked.Exchange(ref _address, 0);
        if (old != 0 && LibC.munmap(old, (nuint)Length) < 0)
        {
            throw NativeCallException.FromLastError("munmap", $"0x{old:X}, {Length}");
        }
    }

    /// <inheritdoc/>
    public override string ToString()
        => IsDisposed ? "mapping (unmapped)" : $"mapping 0x{_address:X}+0x{Length:X}";

    private void CheckRange(long offset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (offset > Length - length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(length), $"Range {offset}+{length} lies outside the {Length}-byte mapping");
        }
        ObjectDisposedException.ThrowIf(IsDisposed, this);
    }
}
