using MiniVmm.Migration.ReturnPath;
using MiniVmm.Migration.Tests.Savevm;

namespace MiniVmm.Migration.Tests.ReturnPath;

/// <summary>The destination's return-path messages, byte for byte, and what happens when the channel fails.</summary>
[TestFixture]
public sealed class ReturnPathWriterTests
{
    [Test]
    public void Messages_are_type_length_payload_in_big_endian()
    {
        var channel = new MemoryStream();
        using var writer = new ReturnPathWriter(channel);

        writer.SendPong(0x01020304);
        writer.SendSwitchoverAck();
        writer.SendShut(failed: true);

        byte[] expected = new StreamBuilder()
            .Be16(2).Be16(4).Be32(0x01020304)
            .Be16(7).Be16(0)
            .Be16(1).Be16(4).Be32(1)
            .ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(channel.ToArray(), Is.EqualTo(expected));
            Assert.That(writer.BytesWritten, Is.EqualTo(expected.Length));
        });
    }

    [Test]
    public void Nothing_goes_out_after_the_shut()
    {
        var channel = new MemoryStream();
        using var writer = new ReturnPathWriter(channel);

        writer.SendShut(failed: false);
        writer.SendPong(9);

        Assert.That(channel.ToArray(), Is.EqualTo(new StreamBuilder().Be16(1).Be16(4).Be32(0).ToArray()));
    }

    [Test]
    public void A_failing_channel_is_reported_once_and_shut_does_not_throw()
    {
        using var writer = new ReturnPathWriter(new BrokenChannel());

        ReturnPathException error = Assert.Throws<ReturnPathException>(() => writer.SendSwitchoverAck())!;

        Assert.Multiple(() =>
        {
            Assert.That(error.Message, Does.Contain("sending SwitchoverAck to the source failed"));
            Assert.That(writer.Error, Is.SameAs(error));
            Assert.That(() => writer.SendShut(failed: true), Throws.Nothing);
        });
    }
}
