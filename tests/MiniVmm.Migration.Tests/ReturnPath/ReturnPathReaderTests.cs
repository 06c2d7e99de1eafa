using MiniVmm.Migration.ReturnPath;
using MiniVmm.Migration.Tests.Savevm;

namespace MiniVmm.Migration.Tests.ReturnPath;

/// <summary>
/// The source's return-path reader against byte-exact destination messages: what it records,
/// and the error (text and return-path offset) for every kind of bad input.
/// </summary>
[TestFixture]
public sealed class ReturnPathReaderTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static StreamBuilder Message(ReturnPathMessageType type, int length) =>
        new StreamBuilder().Message(type, length);

    private static ReturnPathReader Read(StreamBuilder bytes)
    {
        var reader = new ReturnPathReader(new MemoryStream(bytes.ToArray(), writable: false));
        reader.Start();
        Assert.That(reader.Finished.Wait(Wait), Is.True, "the reader thread did not end");
        return reader;
    }

    private static ReturnPathException Fails(StreamBuilder bytes)
    {
        using ReturnPathReader reader = Read(bytes);
        ReturnPathException error = Assert.Throws<ReturnPathException>(() => reader.WaitForShut(CancellationToken.None))!;
        Assert.That(reader.Error, Is.SameAs(error));
        return error;
    }

    [Test]
    public void Pong_ack_and_a_successful_shut_are_recorded_and_the_wait_for_shut_returns()
    {
        using ReturnPathReader reader = Read(
            Message(ReturnPathMessageType.Pong, 4).Be32(1)
                .Message(ReturnPathMessageType.SwitchoverAck, 0)
                .Message(ReturnPathMessageType.Shut, 4).Be32(0));

        Assert.Multiple(() =>
        {
            Assert.That(reader.LastPong, Is.EqualTo(1u));
            Assert.That(reader.SwitchoverAcked, Is.True);
            Assert.That(reader.WaitForSwitchoverAck(TimeSpan.Zero, CancellationToken.None), Is.True);
            Assert.That(() => reader.WaitForShut(CancellationToken.None), Throws.Nothing);
            Assert.That(reader.Error, Is.Null);
        });
    }

    [Test]
    public void Nothing_after_the_shut_is_read()
    {
        using ReturnPathReader reader = Read(Message(ReturnPathMessageType.Shut, 4).Be32(0).Bytes(0xde, 0xad));

        Assert.That(() => reader.WaitForShut(CancellationToken.None), Throws.Nothing);
    }

    [Test]
    public void A_shut_reporting_failure_fails_with_the_sibling_error()
    {
        ReturnPathException error = Fails(Message(ReturnPathMessageType.Pong, 4).Be32(1).Message(ReturnPathMessageType.Shut, 4).Be32(1));

        Assert.Multiple(() =>
        {
            Assert.That(error.Message, Does.Contain("RP: Sibling indicated error 1"));
            Assert.That(error.Offset, Is.EqualTo(8), "the SHUT starts after the 8-byte PONG");
        });
    }

    [Test]
    public void The_channel_ending_before_the_shut_is_an_error_naming_the_offset()
    {
        ReturnPathException error = Fails(Message(ReturnPathMessageType.Pong, 4).Be32(1).Bytes(0x00));

        Assert.Multiple(() =>
        {
            Assert.That(error.Message, Does.Contain("closed the return path before it sent SHUT"));
            Assert.That(error.Message, Does.Contain("message header"));
            Assert.That(error.Offset, Is.EqualTo(9));
        });
    }

    [Test]
    public void A_cut_payload_is_an_error_naming_the_message()
    {
        ReturnPathException error = Fails(Message(ReturnPathMessageType.Shut, 4).Bytes(0, 0));

        Assert.That(error.Message, Does.Contain("SHUT payload"));
    }

    [TestCase(0, 0, "RP: Received invalid message 0x0000 length 0x0000")]
    [TestCase(8, 4, "RP: Received invalid message 0x0008 length 0x0004")]
    [TestCase(0xffff, 0xffff, "RP: Received invalid message 0xffff length 0xffff")]
    public void An_unknown_message_type_is_refused(int type, int length, string message)
    {
        ReturnPathException error = Fails(new StreamBuilder().Be16(type).Be16(length));

        Assert.Multiple(() =>
        {
            Assert.That(error.Message, Does.StartWith("return path: " + message));
            Assert.That(error.Offset, Is.EqualTo(0));
        });
    }

    [TestCase(ReturnPathMessageType.Shut, 0xffff, "'SHUT' message (0x0001) with bad length 65535 expecting 4")]
    [TestCase(ReturnPathMessageType.Pong, 2, "'PONG' message (0x0002) with bad length 2 expecting 4")]
    [TestCase(ReturnPathMessageType.SwitchoverAck, 4, "'SWITCHOVER_ACK' message (0x0007) with bad length 4 expecting 0")]
    public void A_length_that_does_not_fit_the_type_is_refused_before_any_payload_is_read(
        ReturnPathMessageType type, int length, string message)
    {
        // Nothing follows the header: the length check, not a truncation, is what fails.
        ReturnPathException error = Fails(Message(type, length));

        Assert.That(error.Message, Does.Contain(message));
    }

    [TestCase(ReturnPathMessageType.RequestPages, 12)]
    [TestCase(ReturnPathMessageType.RequestPagesById, 40)]
    [TestCase(ReturnPathMessageType.ReceivedBitmap, 5)]
    [TestCase(ReturnPathMessageType.ResumeAck, 4)]
    public void Postcopy_messages_are_refused(ReturnPathMessageType type, int length)
    {
        ReturnPathException error = Fails(Message(type, length).Zeros(length));

        Assert.That(error.Message, Does.Contain("MiniVmm does not do postcopy"));
    }

    [Test]
    public void Waiting_for_the_ack_times_out_without_one()
    {
        var pipe = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.In);
        using var writer = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.Out, pipe.ClientSafePipeHandle);
        using (var reader = new ReturnPathReader(pipe))
        {
            reader.Start();
            writer.Write(Message(ReturnPathMessageType.Pong, 4).Be32(3).ToArray());

            Assert.That(reader.WaitForSwitchoverAck(TimeSpan.FromMilliseconds(50), CancellationToken.None), Is.False);

            writer.Write(Message(ReturnPathMessageType.SwitchoverAck, 0).ToArray());
            Assert.That(reader.WaitForSwitchoverAck(Wait, CancellationToken.None), Is.True);
            Assert.That(reader.LastPong, Is.EqualTo(3u));
            writer.Dispose();
            Assert.That(reader.Finished.Wait(Wait), Is.True, "closing the channel ends the reader");
            Assert.That(reader.Error!.Message, Does.Contain("before it sent SHUT"));
        }

        pipe.Dispose();
    }

    [Test]
    public void A_write_only_channel_is_refused() =>
        Assert.That(() => new ReturnPathReader(new BufferedStream(new WriteOnly())), Throws.ArgumentException);

    private sealed class WriteOnly : MemoryStream
    {
        public override bool CanRead => false;
    }
}

/// <summary>Return-path messages for <see cref="StreamBuilder"/>.</summary>
internal static class ReturnPathMessages
{
    public static StreamBuilder Message(this StreamBuilder bytes, ReturnPathMessageType type, int length) =>
        bytes.Be16((ushort)type).Be16(length);
}
