using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Tests.Stream;

[TestFixture]
public sealed class MigrationStreamExceptionTests
{
    [Test]
    public void OffsetIsAppendedToTheMessage()
    {
        var inner = new InvalidDataException("bad");
        var thrown = new MigrationStreamException("section 'ram' (id 2): unknown flag 0x100", 4242, inner);

        Assert.That(thrown.Message, Is.EqualTo("section 'ram' (id 2): unknown flag 0x100 at offset 4242 (0x1092)"));
        Assert.That(thrown.Detail, Is.EqualTo("section 'ram' (id 2): unknown flag 0x100"));
        Assert.That(thrown.Offset, Is.EqualTo(4242));
        Assert.That(thrown.InnerException, Is.SameAs(inner));
    }

    [Test]
    public void UnknownOffsetLeavesTheMessageAlone()
    {
        var thrown = new MigrationStreamException("no return path");

        Assert.That(thrown.Message, Is.EqualTo("no return path"));
        Assert.That(thrown.Offset, Is.EqualTo(-1));
        Assert.That(new MigrationStreamException("x", -7).Offset, Is.EqualTo(-1));
    }

    [Test]
    public void TruncationPlacesTheOffsetBeforeTheReadDescription()
    {
        var thrown = new MigrationStreamTruncatedException("be32", 4242, 4, 1);

        Assert.That(thrown.Message, Is.EqualTo(
            "unexpected end of stream at offset 4242 (0x1092) while reading be32 (needed 4 bytes, got 1)"));
        Assert.That(thrown.Detail, Is.EqualTo("unexpected end of stream while reading be32 (needed 4 bytes, got 1)"));
        Assert.That(thrown, Is.InstanceOf<MigrationStreamException>());
    }
}
