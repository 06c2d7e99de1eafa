using MiniVmm.Migration.Control;
using MiniVmm.Migration.Savevm;

namespace MiniVmm.Vfio.Tests.Migration;

/// <summary>The VFIO handler's sections count as <c>vfio</c> in the stream's bytes by section kind.</summary>
[TestFixture]
public sealed class VfioSectionBytesTests
{
    [Test]
    public void A_vfio_migration_counts_the_device_sections_as_vfio()
    {
        using VfioNode source = VfioNode.RunningSource(
            VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), VfioMigrationFlags.StopCopy | VfioMigrationFlags.PreCopy, seed: 5));
        byte[] stream = source.MigrateToBytes(out MigrationSession session);
        SectionBytes bytes = session.BytesSent;

        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.ToString());
            Assert.That(source.Registry.Entries.Single(e => e.IdStr == "dev0/vfio").Kind, Is.EqualTo(SectionKind.Vfio));
            Assert.That(bytes.Total, Is.EqualTo(stream.Length), "the kinds add up to the stream");
            // Every round writes a VFIO section (header, END_OF_STATE, footer) even with no data,
            // and the rounds the ballast keeps going depend on the machine's speed: 64 bytes each.
            long framing = 4096 + 64 * source.Ballast.Iterations;
            Assert.That(bytes.Vfio, Is.InRange(source.Handler.BytesTransferred, source.Handler.BytesTransferred + framing),
                "the device's data (query-migrate's vfio transferred) plus its framing and config");
            Assert.That(session.Snapshot().VfioTransferred, Is.EqualTo(source.Handler.BytesTransferred),
                "query-migrate's vfio transferred is the device data, without the framing");
            Assert.That(bytes.Other, Is.GreaterThan(0), "the ballast and the stream's framing");
            Assert.That((bytes.Ram, bytes.Harness), Is.EqualTo((0L, 0L)));
        });
    }
}
