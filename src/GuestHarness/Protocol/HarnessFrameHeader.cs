using System.Buffers.Binary;

namespace MiniVmm.GuestHarness.Protocol;

/// <summary>
/// The 12-byte little-endian header of every frame: <c>u32 request, u32 flags, u32 size</c>,
/// followed by <c>size</c> payload bytes. Flags bits 0–1 hold the protocol version, bit 2 marks a
/// reply; descriptors travel as SCM_RIGHTS on the header's bytes.
/// </summary>
/// <param name="Request">The request number (a reply carries the number it answers).</param>
/// <param name="Flags">Version and reply bits.</param>
/// <param name="Size">Payload bytes after the header.</param>
public readonly record struct HarnessFrameHeader(HarnessRequest Request, uint Flags, uint Size)
{
    /// <summary>Bytes of a header.</summary>
    public const int Length = 12;

    /// <summary>The protocol version this code speaks.</summary>
    public const uint Version = 1;

    /// <summary>Flags bits that hold the version.</summary>
    public const uint VersionMask = 0x3;

    /// <summary>The flag of a reply.</summary>
    public const uint ReplyFlag = 0x4;

    /// <summary>A request of this version.</summary>
    public static HarnessFrameHeader ForRequest(HarnessRequest request, int size) => new(request, Version, (uint)size);

    /// <summary>A reply of this version.</summary>
    public static HarnessFrameHeader ForReply(HarnessRequest request, int size) => new(request, Version | ReplyFlag, (uint)size);

    /// <summary>Whether the frame is a reply.</summary>
    public bool IsReply => (Flags & ReplyFlag) != 0;

    /// <summary>The version the frame says it speaks.</summary>
    public uint FrameVersion => Flags & VersionMask;

    /// <summary>Flag bits this version does not define (they must be 0).</summary>
    public uint UnknownFlags => Flags & ~(VersionMask | ReplyFlag);

    /// <summary>Writes the header into the first <see cref="Length"/> bytes of <paramref name="target"/>.</summary>
    public void WriteTo(Span<byte> target)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(target, (uint)Request);
        BinaryPrimitives.WriteUInt32LittleEndian(target[4..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(target[8..], Size);
    }

    /// <summary>Reads a header from the first <see cref="Length"/> bytes of <paramref name="source"/>.</summary>
    public static HarnessFrameHeader Read(ReadOnlySpan<byte> source) => new(
        (HarnessRequest)BinaryPrimitives.ReadUInt32LittleEndian(source),
        BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
        BinaryPrimitives.ReadUInt32LittleEndian(source[8..]));

    /// <inheritdoc />
    public override string ToString() =>
        $"{(IsReply ? "reply to " : "")}{Request} ({(uint)Request}), flags 0x{Flags:x}, {Size} payload bytes";
}
