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

    [Test]
    public void A_reply_that_announces_16_MiB_holds_only_the_bytes_that_arrived()
    {
        string? closed = null;
        using var closedEvent = new ManualResetEventSlim();
        _channel.Closed += reason =>
        {
            closed = reason;
            closedEvent.Set();
        };
        Handshake();
        long before = GC.GetTotalAllocatedBytes(precise: true);

        SendRaw(HarnessFrameHeader.ForReply(HarnessRequest.SaveState, HarnessPayloads.MaxStateBytes), new byte[100]);
        WaitUntil(() => Pipe.QueuedBytes(_pair.First) == 0, "the reader never took the frame");
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Peer.TryShutdownSocket();

        Assert.That(allocated, Is.LessThan(1 << 20), "the reader allocated from the announced size");
        Assert.That(closedEvent.Wait(TimeSpan.FromSeconds(10)), Is.True, "the channel never closed");
        Assert.That(closed, Does.Contain($"reply to SaveState (6), flags 0x5, {HarnessPayloads.MaxStateBytes} payload bytes: the stream ended after 100 payload bytes"));
    }

    [Test]
    public void A_reply_of_16_MiB_arrives_whole()
    {
        Handshake();
        byte[] state = new byte[HarnessPayloads.MaxStateBytes];
        new Random(5).NextBytes(state);
        var peer = new Thread(() =>
        {
            byte[] request = new byte[HarnessFrameHeader.Length];
            Peer.ReadExactly(request);
            SendRaw(HarnessFrameHeader.ForReply(HarnessRequest.SaveState, state.Length), state);
        });
        peer.Start();

        HarnessReply reply = _channel.Request(HarnessRequest.SaveState, [], [], TimeSpan.FromSeconds(30));
        peer.Join();

        Assert.That(reply.Payload.AsSpan().SequenceEqual(state), Is.True);
    }

    [Test]
    public void A_reply_one_byte_over_the_limit_closes_the_channel_before_its_payload_is_read()
    {
        string? closed = null;
        using var closedEvent = new ManualResetEventSlim();
        _channel.Closed += reason =>
        {
            closed = reason;
            closedEvent.Set();
        };
        Handshake();

        SendRaw(HarnessFrameHeader.ForReply(HarnessRequest.SaveState, HarnessPayloads.MaxStateBytes + 1), []);

        Assert.That(closedEvent.Wait(TimeSpan.FromSeconds(10)), Is.True, "the channel never closed");
        Assert.That(closed, Does.StartWith("protocol error: "));
        Assert.That(closed, Does.EndWith($"more than the {HarnessPayloads.MaxStateBytes} bytes such a frame may carry"));
    }

    [Test]
    public void A_harness_that_stops_reading_cannot_stretch_a_request_beyond_its_timeout()
    {
        Handshake();
        byte[] state = new byte[HarnessPayloads.MaxStateBytes];

        // The peer reads nothing: 16 MiB cannot fit the socket's buffers.
        Task<GuestHarnessException> request = Task.Run(() => Assert.Throws<GuestHarnessException>(
            () => _channel.Request(HarnessRequest.LoadState, state, [], TimeSpan.FromMilliseconds(300)))!);

        Assert.That(request.Wait(TimeSpan.FromSeconds(60)), Is.True, "the request never gave up");
        Assert.That(request.Result.Message, Is.EqualTo("test harness: LoadState could not be sent within 300 ms: the harness does not read"));
        Assert.That(_channel.IsClosed, Is.True, "a frame cut in the middle must close the channel");
    }

    private void Handshake()
    {
        SendRaw(HarnessFrameHeader.ForRequest(HarnessRequest.Hello, 8), HarnessPayloads.U64(1));
        Assert.That(_channel.ReceiveHello(TimeSpan.FromSeconds(5)), Is.EqualTo(HarnessFeatures.State));
        _channel.Reply(HarnessRequest.Hello, HarnessPayloads.U64(1));
        byte[] reply = new byte[HarnessFrameHeader.Length + 8];
        Peer.ReadExactly(reply);
        _channel.StartReading();
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        long deadline = Environment.TickCount64 + 10_000;
        while (!condition())
        {
            Assert.That(Environment.TickCount64, Is.LessThan(deadline), what);
            Thread.Sleep(1);
        }
    }

    private void SendRaw(HarnessFrameHeader header, byte[] payload)
    {
        byte[] frame = new byte[HarnessFrameHeader.Length + payload.Length];
        header.WriteTo(frame);
        payload.CopyTo(frame, HarnessFrameHeader.Length);
        Peer.WriteAll(frame);
    }
}
