namespace MiniVmm.Migration.VMState;

/// <summary>
/// The wire encodings of QEMU's basic scalar types: one byte for bool and 8-bit integers
/// (any non-zero byte loads as true), big-endian two's complement for the wider integers.
/// </summary>
internal static class ScalarEncodings
{
    public static readonly ScalarEncoding<bool> Bool =
        new("bool", (w, v) => w.PutByte(v ? (byte)1 : (byte)0), r => r.GetByte() != 0);

    public static readonly ScalarEncoding<sbyte> Int8 =
        new("int8", (w, v) => w.PutByte((byte)v), r => (sbyte)r.GetByte());

    public static readonly ScalarEncoding<short> Int16 =
        new("int16", (w, v) => w.PutSignedBe16(v), r => r.GetSignedBe16());

    public static readonly ScalarEncoding<int> Int32 =
        new("int32", (w, v) => w.PutSignedBe32(v), r => r.GetSignedBe32());

    public static readonly ScalarEncoding<long> Int64 =
        new("int64", (w, v) => w.PutSignedBe64(v), r => r.GetSignedBe64());

    public static readonly ScalarEncoding<byte> UInt8 =
        new("uint8", (w, v) => w.PutByte(v), r => r.GetByte());

    public static readonly ScalarEncoding<ushort> UInt16 =
        new("uint16", (w, v) => w.PutBe16(v), r => r.GetBe16());

    public static readonly ScalarEncoding<uint> UInt32 =
        new("uint32", (w, v) => w.PutBe32(v), r => r.GetBe32());

    public static readonly ScalarEncoding<ulong> UInt64 =
        new("uint64", (w, v) => w.PutBe64(v), r => r.GetBe64());
}
