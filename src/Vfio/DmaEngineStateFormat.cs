using System.Buffers;
using System.Buffers.Binary;

namespace MiniVmm.Vfio;

/// <summary>
/// The byte format of a <see cref="DmaEngineDevice"/>'s migration data: a sequence of records,
/// each a little-endian header {u32 type, u32 index, u32 length} followed by length payload bytes.
/// A complete state is a Header record, every chunk at least once (later copies win), a Registers
/// record and an End record, in that order except that chunks may repeat.
/// </summary>
internal static class DmaEngineStateFormat
{
    /// <summary>"MVDMAENG" as a little-endian u64.</summary>
    public const ulong Magic = 0x474E45414D44564D;
    public const uint Version = 1;
    public const int RecordHeaderSize = 12;
    public const int HeaderPayloadSize = 24;   // u64 magic, u32 version, u32 chunk size, u64 state size
    public const int RegistersPayloadSize = DmaEngineRegisters.Size;

    public const int HeaderRecordSize = RecordHeaderSize + HeaderPayloadSize;
    public const int RegistersRecordSize = RecordHeaderSize + RegistersPayloadSize;
    public const int EndRecordSize = RecordHeaderSize;

    /// <summary>Record types.</summary>
    public enum RecordType : uint
    {
        Header = 1,
        Chunk = 2,
        Registers = 3,
        End = 4,
    }

    public static void WriteHeader(IBufferWriter<byte> output, int chunkSize, long stateSize)
    {
        Span<byte> payload = Begin(output, RecordType.Header, 0, HeaderPayloadSize);
        BinaryPrimitives.WriteUInt64LittleEndian(payload, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[12..], (uint)chunkSize);
        BinaryPrimitives.WriteUInt64LittleEndian(payload[16..], (ulong)stateSize);
        output.Advance(RecordHeaderSize + HeaderPayloadSize);
    }

    public static void WriteChunk(IBufferWriter<byte> output, int index, ReadOnlySpan<byte> chunk)
    {
        chunk.CopyTo(Begin(output, RecordType.Chunk, (uint)index, chunk.Length));
        output.Advance(RecordHeaderSize + chunk.Length);
    }

    public static void WriteRegisters(IBufferWriter<byte> output, in DmaEngineRegisters registers)
    {
        registers.WriteTo(Begin(output, RecordType.Registers, 0, RegistersPayloadSize));
        output.Advance(RecordHeaderSize + RegistersPayloadSize);
    }

    public static void WriteEnd(IBufferWriter<byte> output)
    {
        Begin(output, RecordType.End, 0, 0);
        output.Advance(RecordHeaderSize);
    }

    /// <summary>Reads the record at the start of <paramref name="data"/>; false when fewer bytes than a whole record remain.</summary>
    public static bool TryReadRecord(ReadOnlySpan<byte> data, out RecordType type, out uint index, out ReadOnlySpan<byte> payload)
    {
        type = 0;
        index = 0;
        payload = default;
        if (data.Length < RecordHeaderSize)
        {
            return false;
        }
        type = (RecordType)BinaryPrimitives.ReadUInt32LittleEndian(data);
        index = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        if (length > (uint)(data.Length - RecordHeaderSize))
        {
            return false;
        }
        payload = data.Slice(RecordHeaderSize, (int)length);
        return true;
    }

    private static Span<byte> Begin(IBufferWriter<byte> output, RecordType type, uint index, int length)
    {
        Span<byte> span = output.GetSpan(RecordHeaderSize + length);
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], (uint)length);
        return span.Slice(RecordHeaderSize, length);
    }
}
