using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Tests.VMState;

public sealed class FieldRoundTripTests
{
    [Test]
    public void Every_scalar_kind_round_trips_with_big_endian_bytes()
    {
        VMStateDescription<Scalars> description = VMStateDescription<Scalars>.Build("scalars", 1, 1)
            .Bool("b", s => ref s.B)
            .Int8("i8", s => ref s.I8)
            .Int16("i16", s => ref s.I16)
            .Int32("i32", s => ref s.I32)
            .Int64("i64", s => ref s.I64)
            .UInt8("u8", s => ref s.U8)
            .UInt16("u16", s => ref s.U16)
            .UInt32("u32", s => ref s.U32)
            .UInt64("u64", s => ref s.U64)
            .Done();
        var state = new Scalars
        {
            B = true, I8 = -2, I16 = -3, I32 = -4, I64 = -5,
            U8 = 0xab, U16 = 0x1234, U32 = 0x12345678, U64 = 0x0102030405060708,
        };

        byte[] bytes = VMStateStreams.Save(description, state);

        Assert.That(bytes, Is.EqualTo(new byte[]
        {
            0x01,
            0xfe,
            0xff, 0xfd,
            0xff, 0xff, 0xff, 0xfc,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb,
            0xab,
            0x12, 0x34,
            0x12, 0x34, 0x56, 0x78,
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        }));
        var loaded = new Scalars();
        Assert.That(VMStateStreams.Load(description, bytes, loaded), Is.EqualTo(bytes.Length));
        Assert.That(loaded, Is.EqualTo(state));
    }

    [Test]
    public void Bool_loads_any_non_zero_byte_as_true()
    {
        VMStateDescription<Scalars> description = VMStateDescription<Scalars>.Build("b", 1, 1).Bool("b", s => ref s.B).Done();
        var loaded = new Scalars();

        VMStateStreams.Load(description, [0x7f], loaded);

        Assert.That(loaded.B, Is.True);
    }

    [Test]
    public void Scalar_arrays_round_trip_whole()
    {
        VMStateDescription<Arrays> description = VMStateDescription<Arrays>.Build("arrays", 1, 1)
            .BoolArray("b", s => s.B)
            .Int8Array("i8", s => s.I8)
            .Int16Array("i16", s => s.I16)
            .Int32Array("i32", s => s.I32)
            .Int64Array("i64", s => s.I64)
            .UInt8Array("u8", s => s.U8)
            .UInt16Array("u16", s => s.U16)
            .UInt32Array("u32", s => s.U32)
            .UInt64Array("u64", s => s.U64)
            .Done();
        Arrays state = Arrays.Populated();

        byte[] bytes = VMStateStreams.Save(description, state);

        Assert.That(bytes, Has.Length.EqualTo(3 * (1 + 1 + 2 + 4 + 8 + 1 + 2 + 4 + 8)));
        Assert.That(bytes.AsSpan(3 + 3 + 6 + 12 + 24 + 3 + 6, 12).ToArray(), Is.EqualTo(new byte[]
        {
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff,
        }));
        var loaded = new Arrays();
        Assert.That(VMStateStreams.Load(description, bytes, loaded), Is.EqualTo(bytes.Length));
        Assert.That(loaded.ToString(), Is.EqualTo(state.ToString()));
    }

    [Test]
    public void Counted_array_writes_only_count_elements_and_loads_them()
    {
        VMStateDescription<Counted> description = CountedDescription();
        var state = new Counted { Count = 2, Items = [0xa1, 0xb2, 0xc3, 0xd4] };

        byte[] bytes = VMStateStreams.Save(description, state);

        Assert.That(bytes, Is.EqualTo(new byte[] { 0x02, 0x00, 0x00, 0x00, 0xa1, 0x00, 0x00, 0x00, 0xb2 }));
        var loaded = new Counted { Items = [9, 9, 9, 9] };
        VMStateStreams.Load(description, bytes, loaded);
        Assert.That(loaded.Count, Is.EqualTo(2));
        Assert.That(loaded.Items, Is.EqualTo(new uint[] { 0xa1, 0xb2, 9, 9 }));
    }

    [Test]
    public void Buffer_round_trips_raw()
    {
        VMStateDescription<Buffers> description = VMStateDescription<Buffers>.Build("buf", 1, 1)
            .Buffer("fixed", s => s.Fixed)
            .Done();
        var state = new Buffers { Fixed = [1, 2, 3, 4, 5] };

        byte[] bytes = VMStateStreams.Save(description, state);

        Assert.That(bytes, Is.EqualTo(new byte[] { 1, 2, 3, 4, 5 }));
        var loaded = new Buffers();
        VMStateStreams.Load(description, bytes, loaded);
        Assert.That(loaded.Fixed, Is.EqualTo(state.Fixed));
    }

    [Test]
    public void Variable_buffer_uses_the_size_from_an_earlier_field()
    {
        VMStateDescription<Buffers> description = VariableBufferDescription();
        var state = new Buffers { Size = 3, Storage = [7, 8, 9, 10, 11, 12, 13, 14] };

        byte[] bytes = VMStateStreams.Save(description, state);

        Assert.That(bytes, Is.EqualTo(new byte[] { 0, 0, 0, 3, 7, 8, 9 }));
        var loaded = new Buffers();
        VMStateStreams.Load(description, bytes, loaded);
        Assert.That(loaded.Size, Is.EqualTo(3));
        Assert.That(loaded.Storage, Is.EqualTo(new byte[] { 7, 8, 9, 0, 0, 0, 0, 0 }));
    }

    [Test]
    public void Unused_writes_zeros_and_skips_whatever_arrives()
    {
        VMStateDescription<Scalars> description = VMStateDescription<Scalars>.Build("u", 1, 1)
            .UInt8("a", s => ref s.U8)
            .Unused(300)
            .UInt8("b", s => ref s.I8AsByte)
            .Done();

        byte[] bytes = VMStateStreams.Save(description, new Scalars { U8 = 1, I8AsByte = 2 });

        Assert.That(bytes, Has.Length.EqualTo(302));
        Assert.That(bytes.AsSpan(1, 300).ToArray(), Is.All.EqualTo(0));
        byte[] incoming = [.. bytes];
        incoming.AsSpan(1, 300).Fill(0xee);
        var loaded = new Scalars();
        Assert.That(VMStateStreams.Load(description, incoming, loaded), Is.EqualTo(302));
        Assert.That((loaded.U8, loaded.I8AsByte), Is.EqualTo(((byte)1, (byte)2)));
    }

    [Test]
    public void Struct_and_struct_arrays_round_trip_with_the_child_version()
    {
        VMStateDescription<Child> child = VMStateDescription<Child>.Build("child", 3, 1)
            .UInt16("v", s => ref s.V)
            .UInt8("w", s => ref s.W, sinceVersion: 3)
            .Done();
        VMStateDescription<Parent> description = VMStateDescription<Parent>.Build("parent", 1, 1)
            .Struct("one", s => s.One, child)
            .StructArray("all", s => s.All, child)
            .UInt8("count", s => ref s.Count)
            .StructArray("some", s => s.Some, child, count: s => s.Count)
            .Done();
        var state = new Parent
        {
            One = new Child { V = 0x0102, W = 3 },
            All = [new Child { V = 4, W = 5 }, new Child { V = 6, W = 7 }],
            Count = 1,
            Some = [new Child { V = 8, W = 9 }, new Child { V = 10, W = 11 }],
        };

        byte[] bytes = VMStateStreams.Save(description, state);

        Assert.That(bytes, Is.EqualTo(new byte[] { 1, 2, 3, 0, 4, 5, 0, 6, 7, 1, 0, 8, 9 }));
        var loaded = new Parent();
        Assert.That(VMStateStreams.Load(description, bytes, loaded), Is.EqualTo(bytes.Length));
        Assert.That(loaded.One, Is.EqualTo(state.One));
        Assert.That(loaded.All, Is.EqualTo(state.All));
        Assert.That(loaded.Some, Is.EqualTo(new[] { new Child { V = 8, W = 9 }, new Child() }));
    }

    [Test]
    public void Equal_fields_save_the_value_and_load_only_a_matching_one()
    {
        VMStateDescription<Scalars> description = VMStateDescription<Scalars>.Build("eq", 1, 1)
            .Int32Equal("i32", s => ref s.I32)
            .UInt8Equal("u8", s => ref s.U8)
            .UInt16Equal("u16", s => ref s.U16)
            .UInt32Equal("u32", s => ref s.U32)
            .UInt64Equal("u64", s => ref s.U64)
            .Done();
        var state = new Scalars { I32 = -1, U8 = 2, U16 = 3, U32 = 4, U64 = 5 };

        byte[] bytes = VMStateStreams.Save(description, state);

        Assert.That(bytes, Has.Length.EqualTo(4 + 1 + 2 + 4 + 8));
        Assert.That(() => VMStateStreams.Load(description, bytes, new Scalars { I32 = -1, U8 = 2, U16 = 3, U32 = 4, U64 = 5 }), Throws.Nothing);
        var different = new Scalars { I32 = -1, U8 = 2, U16 = 3, U32 = 99, U64 = 5 };
        VMStateException error = Assert.Throws<VMStateException>(() => VMStateStreams.Load(description, bytes, different))!;
        Assert.That(error.Detail, Is.EqualTo("Failed to load eq:u32: incoming value 4 of 'u32' differs from the local value 99"));
        Assert.That(error.Offset, Is.EqualTo(7));
        Assert.That(different.U32, Is.EqualTo(99u));
        Assert.That(description.Fields.Select(f => f.TypeName), Is.EqualTo(new[]
        {
            "int32 equal", "uint8 equal", "uint16 equal", "uint32 equal", "uint64 equal",
        }));
    }

    internal static VMStateDescription<Counted> CountedDescription() =>
        VMStateDescription<Counted>.Build("counted", 1, 1)
            .UInt8("count", s => ref s.Count)
            .UInt32Array("items", s => s.Items, count: s => s.Count)
            .Done();

    internal static VMStateDescription<Buffers> VariableBufferDescription() =>
        VMStateDescription<Buffers>.Build("vbuf", 1, 1)
            .Int32("size", s => ref s.Size)
            .VariableBuffer("data", s => s.Storage, size: s => s.Size)
            .Done();

    internal sealed record Scalars
    {
        public bool B;
        public sbyte I8;
        public short I16;
        public int I32;
        public long I64;
        public byte U8;
        public ushort U16;
        public uint U32;
        public ulong U64;
        public byte I8AsByte;
    }

    internal sealed class Arrays
    {
        public bool[] B = new bool[3];
        public sbyte[] I8 = new sbyte[3];
        public short[] I16 = new short[3];
        public int[] I32 = new int[3];
        public long[] I64 = new long[3];
        public byte[] U8 = new byte[3];
        public ushort[] U16 = new ushort[3];
        public uint[] U32 = new uint[3];
        public ulong[] U64 = new ulong[3];

        public static Arrays Populated() => new()
        {
            B = [true, false, true],
            I8 = [-1, 0, 127],
            I16 = [-1, 2, short.MinValue],
            I32 = [1, -1, int.MinValue],
            I64 = [long.MaxValue, -7, 0],
            U8 = [1, 2, 255],
            U16 = [0xffff, 0, 0x8001],
            U32 = [1, 2, uint.MaxValue],
            U64 = [ulong.MaxValue, 1, 0x8000000000000000],
        };

        public override string ToString() =>
            string.Join("|", new object[] { B, I8, I16, I32, I64, U8, U16, U32, U64 }
                .Select(a => string.Join(",", ((System.Collections.IEnumerable)a).Cast<object>())));
    }

    internal sealed class Counted
    {
        public byte Count;
        public uint[] Items = new uint[4];
    }

    internal sealed class Buffers
    {
        public byte[] Fixed = new byte[5];
        public int Size;
        public byte[] Storage = new byte[8];
    }

    internal sealed record Child
    {
        public ushort V;
        public byte W;
    }

    internal sealed class Parent
    {
        public Child One = new();
        public Child[] All = [new(), new()];
        public byte Count;
        public Child[] Some = [new(), new()];
    }
}
