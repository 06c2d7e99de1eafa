using System.Buffers.Binary;

namespace MiniVmm.Vfio;

/// <summary>The register file of a <see cref="DmaEngineDevice"/>: migrated in the stop-copy tail.</summary>
/// <param name="OperationCount">DMA operations performed so far.</param>
/// <param name="GeneratorState">State of the engine's address/data generator.</param>
/// <param name="LastGuestAddress">Guest address of the last DMA write.</param>
/// <param name="LastChunk">State chunk changed by the last DMA operation.</param>
public readonly record struct DmaEngineRegisters(ulong OperationCount, ulong GeneratorState, ulong LastGuestAddress, ulong LastChunk)
{
    /// <summary>Serialized size in bytes.</summary>
    public const int Size = 32;

    /// <summary>Writes the registers as four little-endian u64.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, OperationCount);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], GeneratorState);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], LastGuestAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], LastChunk);
    }

    /// <summary>Reads registers written by <see cref="WriteTo"/>.</summary>
    public static DmaEngineRegisters ReadFrom(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(source),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[24..]));
}
