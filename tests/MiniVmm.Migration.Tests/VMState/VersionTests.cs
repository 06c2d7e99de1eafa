using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Tests.VMState;

public sealed class VersionTests
{
    private static readonly VMStateDescription<Device> Description =
        VMStateDescription<Device>.Build("dev", version: 3, minimumVersion: 1)
            .UInt8("a", s => ref s.A)
            .UInt8("b", s => ref s.B, sinceVersion: 2)
            .UInt8("c", s => ref s.C, sinceVersion: 3)
            .UInt8("d", s => ref s.D, exists: (s, version) => s.WithD && version >= 1)
            .Done();

    [Test]
    public void Save_writes_fields_up_to_the_own_version()
    {
        byte[] bytes = VMStateStreams.Save(Description, new Device { A = 1, B = 2, C = 3, D = 4 });

        Assert.That(bytes, Is.EqualTo(new byte[] { 1, 2, 3 }));
    }

    [TestCase(1, new byte[] { 1 }, 0, 0)]
    [TestCase(2, new byte[] { 1, 2 }, 2, 0)]
    [TestCase(3, new byte[] { 1, 2, 3 }, 2, 3)]
    public void Load_reads_only_fields_present_at_the_incoming_version(int version, byte[] bytes, int expectedB, int expectedC)
    {
        var loaded = new Device();

        Assert.That(VMStateStreams.Load(Description, bytes, loaded, version), Is.EqualTo(bytes.Length));
        Assert.That((loaded.A, loaded.B, loaded.C), Is.EqualTo(((byte)1, (byte)expectedB, (byte)expectedC)));
    }

    [Test]
    public void Exists_predicate_alone_decides_presence()
    {
        byte[] with = VMStateStreams.Save(Description, new Device { A = 1, B = 2, C = 3, D = 4, WithD = true });
        Assert.That(with, Is.EqualTo(new byte[] { 1, 2, 3, 4 }));

        var loaded = new Device { WithD = true };
        VMStateStreams.Load(Description, with, loaded);
        Assert.That(loaded.D, Is.EqualTo(4));

        var without = new Device { D = 9 };
        Assert.That(VMStateStreams.Load(Description, with, without), Is.EqualTo(3));
        Assert.That(without.D, Is.EqualTo(9));
    }

    [Test]
    public void Too_new_version_is_rejected_with_qemu_text()
    {
        var error = Assert.Throws<VMStateException>(() => VMStateStreams.Load(Description, [1, 2, 3, 4], new Device(), 4))!;

        Assert.That(error.Detail, Is.EqualTo("dev: incoming version_id 4 is too new for local version_id 3"));
        Assert.That(error.Message, Is.EqualTo("dev: incoming version_id 4 is too new for local version_id 3 at offset 0 (0x0)"));
        Assert.That(error.DescriptionName, Is.EqualTo("dev"));
    }

    [Test]
    public void Too_old_version_is_rejected_with_qemu_7_2_text()
    {
        var error = Assert.Throws<VMStateException>(() => VMStateStreams.Load(Description, [1], new Device(), 0))!;

        Assert.That(error.Detail, Is.EqualTo("dev: incoming version_id 0 is too old for local minimum version_id  1"));
    }

    [Test]
    public void Builder_rejects_a_minimum_above_the_version()
    {
        Assert.That(() => VMStateDescription<Device>.Build("x", version: 1, minimumVersion: 2), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Fields_are_listed_with_type_and_version()
    {
        Assert.That(Description.Fields, Is.EqualTo(new[]
        {
            new VMStateFieldInfo("a", "uint8", 0, false),
            new VMStateFieldInfo("b", "uint8", 2, false),
            new VMStateFieldInfo("c", "uint8", 3, false),
            new VMStateFieldInfo("d", "uint8", 0, true),
        }));
    }

    private sealed class Device
    {
        public byte A;
        public byte B;
        public byte C;
        public byte D;
        public bool WithD;
    }
}
