using System.Buffers.Binary;

namespace MiniVmm.GuestHarness.Protocol;

/// <summary>
/// One entry of SET_DIRTY_LOG (16 bytes): <c>u64 log_size, u64 mmap_offset</c>. The dirty bit of
/// page <c>p</c> of its region is bit <c>p % 8</c> of byte <c>p / 8</c> of the log.
/// </summary>
/// <param name="LogSize">Bytes of the log to map.</param>
/// <param name="MmapOffset">Where the log starts in its memfd.</param>
public readonly record struct HarnessDirtyLog(ulong LogSize, ulong MmapOffset)
{
    /// <summary>Bytes of one entry.</summary>
    public const int EntryLength = 16;

    /// <summary>Writes the entry into the first <see cref="EntryLength"/> bytes of <paramref name="target"/>.</summary>
    public void WriteTo(Span<byte> target)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(target, LogSize);
        BinaryPrimitives.WriteUInt64LittleEndian(target[8..], MmapOffset);
    }

    /// <summary>Reads an entry from the first <see cref="EntryLength"/> bytes of <paramref name="source"/>.</summary>
    public static HarnessDirtyLog Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(source),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]));
}
