using MiniVmm.Migration.VMState;
using static MiniVmm.Migration.Tests.VMState.VMStateStreams;

namespace MiniVmm.Migration.Tests.VMState;

/// <summary>The vmdesc entries for arrays, structs, duplicate names and subsections, laid out as QEMU 7.2 does.</summary>
public sealed class VmdescLayoutTests
{
    private static readonly VMStateDescription<Child> ChildDescription =
        VMStateDescription<Child>.Build("child", 2, 1)
            .UInt16("v", s => ref s.V)
            .Done();

    [Test]
    public void Compressible_array_is_described_once_with_array_len()
    {
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .UInt32Array("regs", s => s.Regs)
            .Done();

        Assert.That(Describe(description, new Device()), Is.EqualTo(
            "{\"vmsd_name\": \"dev\", \"version\": 1, \"fields\": [{\"name\": \"regs\", \"array_len\": 3, \"type\": \"uint32\", \"size\": 4}]}"));
    }

    [Test]
    public void Array_with_an_exists_predicate_is_described_per_element_with_index()
    {
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .UInt32Array("regs", s => s.Regs, exists: (_, _) => true)
            .Done();

        Assert.That(Describe(description, new Device()), Is.EqualTo(
            "{\"vmsd_name\": \"dev\", \"version\": 1, \"fields\": [" +
            "{\"name\": \"regs\", \"index\": 0, \"type\": \"uint32\", \"size\": 4}, " +
            "{\"name\": \"regs\", \"index\": 1, \"type\": \"uint32\", \"size\": 4}, " +
            "{\"name\": \"regs\", \"index\": 2, \"type\": \"uint32\", \"size\": 4}]}"));
    }

    [Test]
    public void Counted_arrays_of_one_or_no_element_have_no_array_member()
    {
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .UInt8("n", s => ref s.Count)
            .UInt32Array("regs", s => s.Regs, count: s => s.Count)
            .Done();

        Assert.That(Describe(description, new Device { Count = 1 }), Does.EndWith(
            "{\"name\": \"regs\", \"type\": \"uint32\", \"size\": 4}]}"));
        Assert.That(Describe(description, new Device { Count = 0 }), Is.EqualTo(
            "{\"vmsd_name\": \"dev\", \"version\": 1, \"fields\": [{\"name\": \"n\", \"type\": \"uint8\", \"size\": 1}]}"));
    }

    [Test]
    public void Repeated_field_names_get_an_ordinal_suffix()
    {
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .Unused(2)
            .UInt8("n", s => ref s.Count)
            .Unused(4)
            .Done();

        Assert.That(Describe(description, new Device()), Is.EqualTo(
            "{\"vmsd_name\": \"dev\", \"version\": 1, \"fields\": [" +
            "{\"name\": \"unused[0]\", \"type\": \"unused_buffer\", \"size\": 2}, " +
            "{\"name\": \"n\", \"type\": \"uint8\", \"size\": 1}, " +
            "{\"name\": \"unused[1]\", \"type\": \"unused_buffer\", \"size\": 4}]}"));
    }

    [Test]
    public void Struct_is_described_with_a_nested_struct_object()
    {
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .Struct("one", s => s.One, ChildDescription)
            .Done();

        Assert.That(Describe(description, new Device()), Is.EqualTo(
            "{\"vmsd_name\": \"dev\", \"version\": 1, \"fields\": [{\"name\": \"one\", \"type\": \"struct\", " +
            "\"struct\": {\"vmsd_name\": \"child\", \"version\": 2, \"fields\": [{\"name\": \"v\", \"type\": \"uint16\", \"size\": 2}]}, " +
            "\"size\": 2}]}"));
    }

    [Test]
    public void Struct_array_of_compressible_structs_is_described_once()
    {
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .StructArray("kids", s => s.Kids, ChildDescription)
            .Done();

        Assert.That(Describe(description, new Device()), Is.EqualTo(
            "{\"vmsd_name\": \"dev\", \"version\": 1, \"fields\": [{\"name\": \"kids\", \"array_len\": 2, \"type\": \"struct\", " +
            "\"struct\": {\"vmsd_name\": \"child\", \"version\": 2, \"fields\": [{\"name\": \"v\", \"type\": \"uint16\", \"size\": 2}]}, " +
            "\"size\": 2}]}"));
    }

    [Test]
    public void Struct_array_of_structs_with_subsections_is_described_per_element()
    {
        VMStateDescription<Child> sub = VMStateDescription<Child>.Build("child/sub", 1, 1)
            .Needed(s => s.V == 2)
            .Done();
        VMStateDescription<Child> child = VMStateDescription<Child>.Build("child", 1, 1)
            .UInt16("v", s => ref s.V)
            .Subsection(sub)
            .Done();
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .StructArray("kids", s => s.Kids, child)
            .Done();
        var device = new Device { Kids = [new Child { V = 1 }, new Child { V = 2 }] };

        Assert.That(Describe(description, device), Is.EqualTo(
            "{\"vmsd_name\": \"dev\", \"version\": 1, \"fields\": [" +
            "{\"name\": \"kids\", \"index\": 0, \"type\": \"struct\", " +
            "\"struct\": {\"vmsd_name\": \"child\", \"version\": 1, \"fields\": [{\"name\": \"v\", \"type\": \"uint16\", \"size\": 2}]}, \"size\": 2}, " +
            "{\"name\": \"kids\", \"index\": 1, \"type\": \"struct\", " +
            "\"struct\": {\"vmsd_name\": \"child\", \"version\": 1, \"fields\": [{\"name\": \"v\", \"type\": \"uint16\", \"size\": 2}], " +
            "\"subsections\": [{\"vmsd_name\": \"child/sub\", \"version\": 1, \"fields\": []}]}, \"size\": 17}]}"));
    }

    [Test]
    public void Sent_subsections_are_listed_after_the_fields()
    {
        VMStateDescription<Device> one = VMStateDescription<Device>.Build("dev/one", 3, 1).UInt8("n", s => ref s.Count).Done();
        VMStateDescription<Device> two = VMStateDescription<Device>.Build("dev/two", 1, 1).Needed(_ => false).Done();
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .Subsection(one)
            .Subsection(two)
            .Done();

        Assert.That(Describe(description, new Device()), Is.EqualTo(
            "{\"vmsd_name\": \"dev\", \"version\": 1, \"fields\": [], \"subsections\": [" +
            "{\"vmsd_name\": \"dev/one\", \"version\": 3, \"fields\": [{\"name\": \"n\", \"type\": \"uint8\", \"size\": 1}]}]}"));
    }

    [Test]
    public void Variable_buffer_reports_the_bytes_written()
    {
        VMStateDescription<FieldRoundTripTests.Buffers> description = FieldRoundTripTests.VariableBufferDescription();

        Assert.That(Describe(description, new FieldRoundTripTests.Buffers { Size = 5 }), Is.EqualTo(
            "{\"vmsd_name\": \"vbuf\", \"version\": 1, \"fields\": [{\"name\": \"size\", \"type\": \"int32\", \"size\": 4}, " +
            "{\"name\": \"data\", \"type\": \"buffer\", \"size\": 5}]}"));
    }

    private sealed class Child
    {
        public ushort V;
    }

    private sealed class Device
    {
        public uint[] Regs = new uint[3];
        public byte Count;
        public Child One = new();
        public Child[] Kids = [new(), new()];
    }
}
