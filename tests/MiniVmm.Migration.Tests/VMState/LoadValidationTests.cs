using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;
using static MiniVmm.Migration.Tests.VMState.VMStateStreams;

namespace MiniVmm.Migration.Tests.VMState;

public sealed class LoadValidationTests
{
    [Test]
    public void Counted_array_with_a_count_above_the_capacity_fails_before_reading()
    {
        VMStateDescription<FieldRoundTripTests.Counted> description = FieldRoundTripTests.CountedDescription();
        var loaded = new FieldRoundTripTests.Counted();
        uint[] storage = loaded.Items;

        var error = Assert.Throws<VMStateException>(() => Load(description, [200, 0, 0, 0, 1], loaded))!;

        Assert.That(error.Detail, Is.EqualTo(
            "Failed to load counted:items: element count 200 of field 'items' exceeds its capacity of 4 elements"));
        Assert.That(error.Offset, Is.EqualTo(1));
        Assert.That(error.FieldName, Is.EqualTo("items"));
        Assert.That(loaded.Items, Is.SameAs(storage));
        Assert.That(loaded.Items, Is.All.EqualTo(0u));
    }

    [Test]
    public void Counted_array_with_a_count_above_the_capacity_fails_on_save_too()
    {
        var state = new FieldRoundTripTests.Counted { Count = 5 };

        var error = Assert.Throws<VMStateException>(() => Save(FieldRoundTripTests.CountedDescription(), state))!;

        Assert.That(error.Detail, Does.StartWith("Save of field counted/items failed: element count 5"));
    }

    [Test]
    public void Huge_variable_buffer_size_fails_without_allocating()
    {
        VMStateDescription<FieldRoundTripTests.Buffers> description = FieldRoundTripTests.VariableBufferDescription();
        var loaded = new FieldRoundTripTests.Buffers();

        var error = Assert.Throws<VMStateException>(() => Load(description, [0x7f, 0xff, 0xff, 0xff, 1, 2], loaded))!;

        Assert.That(error.Detail, Is.EqualTo(
            "Failed to load vbuf:data: size 2147483647 of buffer 'data' is outside 0..8 (the buffer's capacity)"));
        Assert.That(error.Offset, Is.EqualTo(4));
        Assert.That(loaded.Storage, Has.Length.EqualTo(8));
    }

    [Test]
    public void Negative_variable_buffer_size_fails()
    {
        var error = Assert.Throws<VMStateException>(
            () => Load(FieldRoundTripTests.VariableBufferDescription(), [0xff, 0xff, 0xff, 0xfe], new FieldRoundTripTests.Buffers()))!;

        Assert.That(error.Detail, Does.Contain("size -2 of buffer 'data'"));
    }

    [Test]
    public void Failing_nested_struct_field_names_the_path()
    {
        VMStateDescription<Leaf> leaf = VMStateDescription<Leaf>.Build("leaf", 1, 1)
            .UInt32Equal("magic", s => ref s.Magic)
            .Done();
        VMStateDescription<Node> node = VMStateDescription<Node>.Build("node", 1, 1)
            .UInt8("before", s => ref s.Before)
            .Struct("leaf", s => s.Leaf, leaf)
            .Done();
        byte[] bytes = [7, 0, 0, 0, 2];
        using MigrationStreamReader reader = Reader(bytes);

        var error = Assert.Throws<VMStateException>(() => node.Load(reader, new Node(), 1))!;

        Assert.That(error.Detail, Is.EqualTo(
            "Failed to load node:leaf: Failed to load leaf:magic: incoming value 2 of 'magic' differs from the local value 1"));
        Assert.That(error.Offset, Is.EqualTo(1));
        Assert.That(error.InnerException, Is.TypeOf<VMStateException>().With.Property("FieldName").EqualTo("magic"));
        Assert.That(reader.HasError, Is.True, "a failed field marks the stream as failed");
    }

    [Test]
    public void Truncated_field_reports_the_field_and_the_offset()
    {
        var error = Assert.Throws<VMStateException>(() => Load(FieldRoundTripTests.CountedDescription(), [2, 0, 0, 0, 1, 0], new FieldRoundTripTests.Counted()))!;

        Assert.That(error.Detail, Does.StartWith("Failed to load counted:items: unexpected end of stream"));
        Assert.That(error.InnerException, Is.TypeOf<MigrationStreamTruncatedException>());
        Assert.That(error.Offset, Is.EqualTo(5));
    }

    [Test]
    [MaxTime(20_000)]
    public void Every_truncation_of_a_stream_without_subsections_fails_with_a_stream_exception()
    {
        VMStateDescription<Leaf> leaf = VMStateDescription<Leaf>.Build("leaf", 1, 1).UInt32("magic", s => ref s.Magic).Done();
        VMStateDescription<Node> description = VMStateDescription<Node>.Build("node", 2, 1)
            .UInt8("before", s => ref s.Before)
            .Unused(3)
            .Struct("leaf", s => s.Leaf, leaf)
            .UInt8("count", s => ref s.Count)
            .UInt16Array("items", s => s.Items, count: s => s.Count)
            .Int32("size", s => ref s.Size)
            .VariableBuffer("data", s => s.Data, size: s => s.Size)
            .Done();
        var state = new Node { Before = 1, Leaf = new Leaf { Magic = 5 }, Count = 3, Items = [1, 2, 3, 4], Size = 6, Data = [1, 2, 3, 4, 5, 6, 7, 8] };
        byte[] full = Save(description, state);
        Assert.That(full, Has.Length.EqualTo(1 + 3 + 4 + 1 + 6 + 4 + 6));

        for (int length = 0; length < full.Length; length++)
        {
            byte[] prefix = full[..length];
            Assert.That(
                () => Load(description, prefix, new Node()),
                Throws.InstanceOf<MigrationStreamException>(),
                $"prefix of {length} bytes");
        }

        Assert.That(Load(description, full, new Node()), Is.EqualTo(full.Length));
    }

    [Test]
    [MaxTime(20_000)]
    public void Every_truncation_of_a_stream_with_subsections_fails_or_stops_cleanly()
    {
        VMStateDescription<Node> sub = VMStateDescription<Node>.Build("node/sub", 1, 1).UInt16("size", s => ref s.Items[0]).Done();
        VMStateDescription<Node> description = VMStateDescription<Node>.Build("node", 1, 1)
            .UInt8("before", s => ref s.Before)
            .UInt8("count", s => ref s.Count)
            .Subsection(sub)
            .Done();
        byte[] full = Save(description, new Node { Before = 1, Count = 2, Items = [3, 0, 0, 0] });
        int fieldsEnd = 2;

        for (int length = 0; length < full.Length; length++)
        {
            byte[] prefix = full[..length];
            long consumed = -1;
            Exception? failure = null;
            try
            {
                consumed = Load(description, prefix, new Node());
            }
            catch (Exception error)
            {
                failure = error;
            }

            if (length < fieldsEnd || length >= fieldsEnd + 1 + 1 + "node/sub".Length)
            {
                Assert.That(failure, Is.InstanceOf<MigrationStreamException>(), $"prefix of {length} bytes");
            }
            else
            {
                // The subsection header is incomplete: QEMU stops and leaves it to the caller.
                Assert.That(failure, Is.Null, $"prefix of {length} bytes");
                Assert.That(consumed, Is.EqualTo(fieldsEnd), $"prefix of {length} bytes");
            }
        }
    }

    private sealed class Leaf
    {
        public uint Magic = 1;
    }

    private sealed class Node
    {
        public byte Before;
        public Leaf Leaf = new();
        public byte Count;
        public ushort[] Items = new ushort[4];
        public int Size;
        public byte[] Data = new byte[8];
    }
}
