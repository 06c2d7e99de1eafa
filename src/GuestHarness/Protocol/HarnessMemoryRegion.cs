using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.GuestHarness.Protocol;

/// <summary>
/// One entry of SET_MEM_TABLE (64 bytes): <c>u64 guest_phys_addr, u64 size, u64 mmap_offset,
/// char idstr[40]</c>, the name NUL-padded (so at most 39 bytes of it).
/// </summary>
/// <param name="GuestPhysAddr">Guest physical address of the region's first byte.</param>
/// <param name="Size">Bytes to map.</param>
/// <param name="MmapOffset">Where the region starts in its memfd.</param>
/// <param name="IdStr">The RAM block's name.</param>
public sealed record HarnessMemoryRegion(ulong GuestPhysAddr, ulong Size, ulong MmapOffset, string IdStr)
{
    /// <summary>Bytes of one entry.</summary>
    public const int EntryLength = 64;

    /// <summary>Bytes of the name field.</summary>
    public const int IdStrLength = 40;

    /// <summary>Writes the entry into the first <see cref="EntryLength"/> bytes of <paramref name="target"/>.</summary>
    /// <exception cref="ArgumentException">The name needs more than 39 UTF-8 bytes.</exception>
    public void WriteTo(Span<byte> target)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(target, GuestPhysAddr);
        BinaryPrimitives.WriteUInt64LittleEndian(target[8..], Size);
        BinaryPrimitives.WriteUInt64LittleEndian(target[16..], MmapOffset);
        Span<byte> name = target.Slice(24, IdStrLength);
        name.Clear();
        if (Encoding.UTF8.GetByteCount(IdStr) >= IdStrLength)
        {
            throw new ArgumentException(
                $"RAM block '{IdStr}': a guest harness memory table holds names of at most {IdStrLength - 1} bytes");
        }

        Encoding.UTF8.GetBytes(IdStr, name);
    }

    /// <summary>Reads an entry from the first <see cref="EntryLength"/> bytes of <paramref name="source"/>.</summary>
    public static HarnessMemoryRegion Read(ReadOnlySpan<byte> source)
    {
        ReadOnlySpan<byte> name = source.Slice(24, IdStrLength);
        int end = name.IndexOf((byte)0);
        return new HarnessMemoryRegion(
            BinaryPrimitives.ReadUInt64LittleEndian(source),
            BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
            Encoding.UTF8.GetString(end < 0 ? name : name[..end]));
    }
}
