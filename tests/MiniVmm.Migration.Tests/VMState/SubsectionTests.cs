using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;
using static MiniVmm.Migration.Tests.VMState.VMStateStreams;

namespace MiniVmm.Migration.Tests.VMState;

public sealed class SubsectionTests
{
    private static readonly VMStateDescription<Device> Extra =
        VMStateDescription<Device>.Build("dev/extra", version: 5, minimumVersion: 1)
            .UInt16("extra", s => ref s.Extra)
            .Needed(s => s.Extra != 0)
            .Done();

    private static readonly VMStateDescription<Device> More =
        VMStateDescription<Device>.Build("dev/more", version: 1, minimumVersion: 1)
            .UInt8("more", s => ref s.More)
            .Done();

    private static readonly VMStateDescription<Device> Description =
        VMStateDescription<Device>.Build("dev", version: 1, minimumVersion: 1)
            .UInt8("base", s => ref s.Base)
            .Subsection(Extra)
            .Subsection(More, needed: s => s.More != 0)
            .PreLoad(s => s.Extra = 0x4242)
            .Done();

    [Test]
    public void Needed_subsections_are_written_in_list_order()
    {
        byte[] bytes = Save(Description, new Device { Base = 1, Extra = 0x0203, More = 4 });

        Assert.That(bytes, Is.EqualTo(Concat([1], SubsectionHeader("dev/extra", 5), [2, 3], SubsectionHeader("dev/more", 1), [4])));
        Assert.That(Save(Description, new Device { Base = 1 }), Is.EqualTo(new byte[] { 1 }));
        Assert.That(Description.Subsections.Select(s => s.Name), Is.EqualTo(new[] { "dev/extra", "dev/more" }));
    }

    [Test]
    public void Present_subsections_load_in_any_order()
    {
        byte[] bytes = Concat([1], SubsectionHeader("dev/more", 1), [4], SubsectionHeader("dev/extra", 5), [2, 3]);
        var loaded = new Device();

        Assert.That(Load(Description, bytes, loaded), Is.EqualTo(bytes.Length));
        Assert.That((loaded.Base, loaded.Extra, loaded.More), Is.EqualTo(((byte)1, (ushort)0x0203, (byte)4)));
    }

    [Test]
    public void Absent_subsection_keeps_what_pre_load_set()
    {
        var loaded = new Device { Extra = 7 };

        Load(Description, Concat([1], SubsectionHeader("dev/more", 1), [4]), loaded);

        Assert.That(loaded.Extra, Is.EqualTo(0x4242));
    }

    [Test]
    public void Unknown_subsection_with_the_parent_prefix_fails()
    {
        byte[] bytes = Concat([1], SubsectionHeader("dev/nope", 1), [4]);

        var error = Assert.Throws<VMStateException>(() => Load(Description, bytes, new Device()))!;

        Assert.That(error.Detail, Is.EqualTo("VM subsection 'dev/nope' in 'dev' does not exist"));
        Assert.That(error.Offset, Is.EqualTo(1));
    }

    [Test]
    public void Prefix_match_without_slash_counts_as_ours_and_fails_the_lookup()
    {
        // QEMU compares only the parent's name, not the "/" after it.
        byte[] bytes = Concat([1], SubsectionHeader("device/x", 1));

        var error = Assert.Throws<VMStateException>(() => Load(Description, bytes, new Device()))!;

        Assert.That(error.Detail, Is.EqualTo("VM subsection 'device/x' in 'dev' does not exist"));
    }

    private static IEnumerable<TestCaseData> ForeignSubsectionStarts()
    {
        yield return new TestCaseData((object)new byte[] { 0x05 }).SetName("marker at the end of the stream");
        yield return new TestCaseData((object)new byte[] { 0x05, 0x03, (byte)'d', (byte)'e', (byte)'v' }).SetName("name shorter than parent plus one");
        yield return new TestCaseData((object)new byte[] { 0x05, 0x09, (byte)'d', (byte)'e', (byte)'v' }).SetName("name cut short by the end of the stream");
        yield return new TestCaseData((object)Concat(SubsectionHeader("other/sub", 1), [9])).SetName("name with another prefix");
        yield return new TestCaseData((object)Concat(SubsectionHeader("de/extraxx", 1), [9])).SetName("name with a partial prefix");
    }

    [TestCaseSource(nameof(ForeignSubsectionStarts))]
    public void Foreign_subsection_bytes_are_left_in_the_stream(byte[] trailer)
    {
        byte[] bytes = Concat([1], trailer);
        var loaded = new Device();

        using MigrationStreamReader reader = Reader(bytes);
        Description.Load(reader, loaded, 1);

        Assert.That(reader.Offset, Is.EqualTo(1));
        Assert.That(reader.PeekByte(), Is.EqualTo(0x05));
        Assert.That(reader.HasError, Is.False);
        Assert.That(loaded.Base, Is.EqualTo(1));
    }

    [Test]
    public void Subsection_version_is_truncated_to_its_low_byte()
    {
        var loaded = new Device();

        Load(Description, Concat([1], SubsectionHeader("dev/extra", 0x0000_0105), [2, 3]), loaded);
        Assert.That(loaded.Extra, Is.EqualTo(0x0203));

        var error = Assert.Throws<VMStateException>(
            () => Load(Description, Concat([1], SubsectionHeader("dev/extra", 0x0100_0006), [2, 3]), new Device()))!;
        Assert.That(error.Detail, Is.EqualTo(
            "Loading VM subsection 'dev/extra' in 'dev' failed: dev/extra: incoming version_id 6 is too new for local version_id 5"));
        Assert.That(error.InnerException, Is.TypeOf<VMStateException>());
    }

    [Test]
    public void Subsection_name_must_extend_the_parent_name()
    {
        VMStateDescription<Device> wrong = VMStateDescription<Device>.Build("other/x", 1, 1).Done();
        VMStateDescription<Device> bare = VMStateDescription<Device>.Build("dev/", 1, 1).Done();
        VMStateDescription<Device> noSlash = VMStateDescription<Device>.Build("devx", 1, 1).Done();

        Assert.That(() => VMStateDescription<Device>.Build("dev", 1, 1).Subsection(wrong), Throws.ArgumentException);
        Assert.That(() => VMStateDescription<Device>.Build("dev", 1, 1).Subsection(bare), Throws.ArgumentException);
        Assert.That(() => VMStateDescription<Device>.Build("dev", 1, 1).Subsection(noSlash), Throws.ArgumentException);
        Assert.That(() => VMStateDescription<Device>.Build("dev", 1, 1).Subsection(More).Subsection(More), Throws.ArgumentException);
    }

    [Test]
    public void Nested_subsections_round_trip()
    {
        VMStateDescription<Device> inner = VMStateDescription<Device>.Build("dev/more/deep", 2, 2)
            .UInt16("deep", s => ref s.Extra)
            .Done();
        VMStateDescription<Device> middle = VMStateDescription<Device>.Build("dev/more", 1, 1)
            .UInt8("more", s => ref s.More)
            .Subsection(inner)
            .Done();
        VMStateDescription<Device> top = VMStateDescription<Device>.Build("dev", 1, 1)
            .UInt8("base", s => ref s.Base)
            .Subsection(middle)
            .Done();

        byte[] bytes = Save(top, new Device { Base = 1, More = 2, Extra = 3 });

        Assert.That(bytes, Is.EqualTo(Concat([1], SubsectionHeader("dev/more", 1), [2], SubsectionHeader("dev/more/deep", 2), [0, 3])));
        var loaded = new Device();
        Assert.That(Load(top, bytes, loaded), Is.EqualTo(bytes.Length));
        Assert.That((loaded.Base, loaded.More, loaded.Extra), Is.EqualTo(((byte)1, (byte)2, (ushort)3)));
    }

    private sealed class Device
    {
        public byte Base;
        public ushort Extra;
        public byte More;
    }
}
