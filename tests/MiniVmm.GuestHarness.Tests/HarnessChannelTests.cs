using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.GuestHarness.Connection;
using MiniVmm.GuestHarness.Protocol;
using MiniVmm.Native;

namespace MiniVmm.GuestHarness.Tests;

/// <summary>
/// <see cref="HarnessChannel"/> over a real socketpair with a peer that writes raw bytes: what a
/// hostile or broken harness can send, and what MiniVmm does with it.
/// </summary>
[TestFixture]
public sealed class HarnessChannelTests
{
    private UnixSocketPair _pair = null!;
    private HarnessChannel _channel = null!;

    private FileDescriptorHandle Peer => _pair.Second;

    [SetUp]
    public void SetUp()
    {
        _pair = UnixSocketPair.Create();
        FileDescriptorHandle ours = _pair.First.Duplicate();
        var socket = new Socket(new SafeSocketHandle(ours.DangerousGetHandle(), ownsHandle: true));
        ours.SetHandleAsInvalid();
        _channel = new HarnessChannel(socket, "test harness", TimeSpan.FromSeconds(5), NullLogger.Instance);
    }

    [TearDown]
    public void TearDown()
    {
        _channel.Dispose();
        _pair.Dispose();
    }

    [Test]
    public void A_harness_that_closes_right_after_HELLO_fails_the_reply_with_a_GuestHarnessException()
    {
        // Found by the fuzzer: the reply's EPIPE escaped as a bare NativeCallException.
        SendRaw(HarnessFrameHeader.ForRequest(HarnessRequest.Hello, 8), HarnessPayloads.U64(1));
        Assert.That(_channel.ReceiveHello(TimeSpan.FromSeconds(5)), Is.EqualTo(HarnessFeatures.State));
        _pair.Second.Dispose();

        var error = Assert.Throws<GuestHarnessException>(
            () => _channel.Reply(HarnessRequest.Hello, HarnessPayloads.U64(1)))!;

        Assert.That(error.Message, Does.StartWith("test harness: sending the reply to Hello failed"));
        Assert.That(error.InnerException, Is.TypeOf<NativeCallException>());
    }

    private void SendRaw(HarnessFrameHeader header, byte[] payload)
    {
        byte[] frame = new byte[HarnessFrameHeader.Length + payload.Length];
        header.WriteTo(frame);
        payload.CopyTo(frame, HarnessFrameHeader.Length);
        Peer.WriteAll(frame);
    }
}
