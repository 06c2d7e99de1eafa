using System.Buffers.Binary;
using System.Net.Sockets;
using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.GuestHarness.Connection;
using MiniVmm.GuestHarness.Protocol;
using MiniVmm.Native;

namespace MiniVmm.Fuzz.Tests.Targets;

/// <summary>
/// MiniVmm's end of a guest-harness connection over a real socketpair, fed by a fake harness
/// that sends the (mutated) bytes a harness would send: its HELLO first, then, each time
/// MiniVmm sends a request, what looks like the next frame (header plus as much payload as its
/// size field says and the input holds); when the input is used up it shuts its side down. In
/// some cases (chosen from the input, so a replay does the same) it attaches a descriptor to a
/// frame. MiniVmm's side runs the real handshake and requests: HELLO, SET_MEM_TABLE,
/// SET_DIRTY_LOG, RUN, THROTTLE, PAUSE, SAVE_STATE, LOAD_STATE, SHUTDOWN. Every failure must be
/// a <see cref="GuestHarnessException"/> without a runtime fault inside, and disposing the
/// channel must end its reader.
/// </summary>
internal sealed class HarnessChannelTarget : IFuzzTarget
{
    // Unmutated seeds get time enough on a loaded machine; mutated cases a short wait, since a
    // reply that never comes is what many of them test.
    private static readonly TimeSpan SeedTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MutantTimeout = TimeSpan.FromMilliseconds(5);

    public HarnessChannelTarget()
    {
        Seeds =
        [
            Seed("cooperative", HarnessFeatures.State | HarnessFeatures.Throttle, saved: [.. Enumerable.Range(0, 40).Select(i => (byte)i)]),
            Seed("stateless", HarnessFeatures.None, saved: []),
            Seed("unknown-features", (HarnessFeatures)0xff00_0000_0000_00ffUL, saved: [0xde, 0xad]),
        ];
    }

    public string Name => "harness-channel";

    public IReadOnlyList<FuzzSeed> Seeds { get; }

    public bool BigEndianLengths => false;

    public TimeSpan CaseTimeout => TimeSpan.FromSeconds(20);

    public string? LastRejection { get; private set; }

    public CaseOutcome Run(byte[] input)
    {
        LastRejection = null;
        bool isSeed = Seeds.Any(s => ReferenceEquals(s.Bytes, input));
        TimeSpan timeout = isSeed ? SeedTimeout : MutantTimeout;
        using UnixSocketPair pair = UnixSocketPair.Create();
        FileDescriptorHandle ours = pair.First.Duplicate();
        var socket = new Socket(new SafeSocketHandle(ours.DangerousGetHandle(), ownsHandle: true));
        ours.SetHandleAsInvalid();
        using var peer = new PeerHarness(pair.Second, input);
        var channel = new HarnessChannel(socket, "fuzz harness", TimeSpan.FromSeconds(5), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        string? closedReason = null;
        channel.Closed += reason => closedReason = reason;
        bool accepted;
        try
        {
            accepted = Converse(channel, timeout, out string? rejection);
            LastRejection = rejection;
        }
        finally
        {
            channel.Dispose();
            peer.Stop();
        }

        if (!channel.IsClosed || closedReason is null)
        {
            throw new FuzzFinding("the channel was disposed but does not say it is closed, or never raised Closed");
        }

        if (peer.Error is { } peerError)
        {
            throw new FuzzFinding($"the fake harness failed: {peerError.Message}", peerError);
        }

        return accepted ? CaseOutcome.Accepted : CaseOutcome.Rejected;
    }

    public void Dispose()
    {
    }

    /// <summary>MiniVmm's side of a whole session; false once the harness failed a request.</summary>
    private static bool Converse(HarnessChannel channel, TimeSpan timeout, out string? rejection)
    {
        rejection = null;
        try
        {
            HarnessFeatures announced = channel.ReceiveHello(timeout);
            HarnessFeatures accepted = announced & (HarnessFeatures.State | HarnessFeatures.Throttle);
            channel.Reply(HarnessRequest.Hello, HarnessPayloads.U64((ulong)accepted));
            channel.StartReading();
            var connection = new HarnessConnection(channel, 0, accepted, timeout);
            ExpectOk(channel, HarnessRequest.SetMemTable,
                HarnessPayloads.MemTable([new HarnessMemoryRegion(0, 64 << 20, 0, "ram")]), timeout);
            ExpectOk(channel, HarnessRequest.SetDirtyLog, HarnessPayloads.DirtyLogs([new HarnessDirtyLog(2048, 0)]), timeout);
            connection.Run();
            connection.Throttle(10);
            connection.Pause();
            byte[] state = connection.SaveState();
            if (state.Length > HarnessPayloads.MaxStateBytes)
            {
                throw new FuzzFinding($"SAVE_STATE returned {state.Length} bytes, more than the {HarnessPayloads.MaxStateBytes} allowed");
            }

            connection.LoadState(state);
            connection.Shutdown();
            return true;
        }
        catch (Exception error) when (error is not FuzzFinding)
        {
            ErrorRules.RequireTyped(error, "the harness channel", typeof(GuestHarnessException));
            rejection = error.Message;
            return false;
        }
    }

    // What HarnessGuest does with the memory tables' replies.
    private static void ExpectOk(HarnessChannel channel, HarnessRequest request, byte[] payload, TimeSpan timeout)
    {
        HarnessReply reply = channel.Request(request, payload, [], timeout);
        long status;
        try
        {
            status = HarnessPayloads.ReadStatus(reply.Payload, $"reply to {request}");
        }
        catch (HarnessProtocolException error)
        {
            throw new GuestHarnessException(error.Message, error);
        }

        if (status != 0)
        {
            throw new GuestHarnessException($"refused {request}: {status}");
        }
    }

    private static FuzzSeed Seed(string name, HarnessFeatures features, byte[] saved)
    {
        var frames = new List<byte[]>
        {
            Frame(HarnessFrameHeader.ForRequest(HarnessRequest.Hello, 8), HarnessPayloads.U64((ulong)features)),
            Frame(HarnessFrameHeader.ForReply(HarnessRequest.SetMemTable, 8), HarnessPayloads.Status(0)),
            Frame(HarnessFrameHeader.ForReply(HarnessRequest.SetDirtyLog, 8), HarnessPayloads.Status(0)),
            Frame(HarnessFrameHeader.ForReply(HarnessRequest.Run, 8), HarnessPayloads.Status(0)),
        };
        if ((features & HarnessFeatures.Throttle) != 0)
        {
            frames.Add(Frame(HarnessFrameHeader.ForReply(HarnessRequest.Throttle, 8), HarnessPayloads.Status(0)));
        }

        frames.Add(Frame(HarnessFrameHeader.ForReply(HarnessRequest.Pause, 8), HarnessPayloads.Status(0)));
        frames.Add(Frame(HarnessFrameHeader.ForReply(HarnessRequest.SaveState, saved.Length), saved));
        frames.Add(Frame(HarnessFrameHeader.ForReply(HarnessRequest.LoadState, 8), HarnessPayloads.Status(0)));
        frames.Add(Frame(HarnessFrameHeader.ForReply(HarnessRequest.Shutdown, 8), HarnessPayloads.Status(0)));
        var spots = new List<int>();
        int at = 0;
        foreach (byte[] frame in frames)
        {
            spots.Add(at);
            spots.Add(at + 8);
            at += frame.Length;
        }

        return new FuzzSeed(name, [.. frames.SelectMany(f => f)], spots);
    }

    private static byte[] Frame(HarnessFrameHeader header, byte[] payload)
    {
        byte[] frame = new byte[HarnessFrameHeader.Length + payload.Length];
        header.WriteTo(frame);
        payload.CopyTo(frame, HarnessFrameHeader.Length);
        return frame;
    }

    /// <summary>The fake harness: replays the input one frame-sized piece per request from MiniVmm.</summary>
    private sealed class PeerHarness : IDisposable
    {
        private readonly FileDescriptorHandle _socket;
        private readonly byte[] _input;
        private readonly Thread _thread;
        private readonly int _descriptorPiece;
        private int _position;

        public PeerHarness(FileDescriptorHandle socket, byte[] input)
        {
            _socket = socket;
            _input = input;
            ulong hash = 0xcbf29ce484222325;
            foreach (byte b in input)
            {
                hash = (hash ^ b) * 0x100000001b3;
            }

            // One case in eight passes a descriptor with one of its pieces.
            _descriptorPiece = hash % 8 == 0 ? (int)(hash >> 3) % 10 : -1;
            _thread = new Thread(Loop) { IsBackground = true, Name = "fuzz harness peer" };
            _thread.Start();
        }

        public Exception? Error { get; private set; }

        public void Stop()
        {
            _socket.TryShutdownSocket();
            _thread.Join();
        }

        public void Dispose() => Stop();

        private void Loop()
        {
            try
            {
                int piece = 0;
                SendPiece(piece++);
                var descriptors = new List<FileDescriptorHandle>();
                byte[] header = new byte[HarnessFrameHeader.Length];
                while (ReadExactly(header, descriptors))
                {
                    descriptors.ForEach(d => d.Dispose());
                    descriptors.Clear();
                    var frame = HarnessFrameHeader.Read(header);
                    byte[] payload = new byte[frame.Size];
                    if (!ReadExactly(payload, descriptors))
                    {
                        return;
                    }

                    if (!frame.IsReply)
                    {
                        SendPiece(piece++);
                    }
                }
            }
            catch (NativeCallException error) when (error.Errno is Errno.EPIPE or Errno.ECONNRESET or Errno.EBADF)
            {
                // MiniVmm closed its end.
            }
            catch (Exception error)
            {
                Error = error;
            }
        }

        private void SendPiece(int piece)
        {
            if (_position >= _input.Length)
            {
                return;
            }

            int left = _input.Length - _position;
            int length = left;
            if (left >= HarnessFrameHeader.Length)
            {
                uint size = BinaryPrimitives.ReadUInt32LittleEndian(_input.AsSpan(_position + 8));
                length = (int)Math.Min((ulong)left, HarnessFrameHeader.Length + (ulong)size);
            }

            using FileDescriptorHandle? attached = piece == _descriptorPiece ? pipeEnd() : null;
            ReadOnlySpan<byte> bytes = _input.AsSpan(_position, length);
            int sent = UnixSocketMessages.Send(_socket, bytes, attached is null ? [] : [attached.Number]);
            while (sent < bytes.Length)
            {
                sent += UnixSocketMessages.Send(_socket, bytes[sent..], []);
            }

            _position += length;
            if (_position >= _input.Length)
            {
                _socket.TryShutdownSocket();
            }

            static FileDescriptorHandle pipeEnd()
            {
                using PipeEnds pipe = Pipe.Create();
                return pipe.Read.Duplicate();
            }
        }

        private bool ReadExactly(byte[] buffer, List<FileDescriptorHandle> descriptors)
        {
            int got = 0;
            while (got < buffer.Length)
            {
                int count = UnixSocketMessages.Receive(_socket, buffer.AsSpan(got), descriptors);
                if (count == 0)
                {
                    return false;
                }

                got += count;
            }

            return true;
        }
    }
}
