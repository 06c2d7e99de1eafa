using System.Net.Sockets;
using MiniVmm.GuestHarness.Protocol;
using MiniVmm.Native;

namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// A cooperative guest harness peer for the machines the fuzzer builds: it connects, says HELLO
/// with STATE and THROTTLE, answers every request with status 0 (SAVE_STATE with
/// <see cref="State"/>), keeps what LOAD_STATE brings, closes the descriptors it is sent without
/// mapping them, and leaves after SHUTDOWN or at the end of the stream.
/// </summary>
internal sealed class FakeHarness : IDisposable
{
    private readonly Socket _socket;
    private readonly Thread _thread;
    private int _disposed;

    private FakeHarness(Socket socket, byte[] state)
    {
        _socket = socket;
        State = state;
        _thread = new Thread(Loop) { IsBackground = true, Name = "fuzz fake harness" };
        _thread.Start();
    }

    /// <summary>What SAVE_STATE returns.</summary>
    public byte[] State { get; }

    /// <summary>The bytes of the last LOAD_STATE.</summary>
    public byte[]? Loaded { get; private set; }

    public static FakeHarness Connect(string path, byte[] state)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.ReceiveTimeout = 30_000;
            Send(socket, HarnessFrameHeader.ForRequest(HarnessRequest.Hello, 8), HarnessPayloads.U64((ulong)(HarnessFeatures.State | HarnessFeatures.Throttle)));
            return new FakeHarness(socket, state);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }

        _socket.Dispose();
        _thread.Join();
    }

    private void Loop()
    {
        try
        {
            while (ReadFrame() is ({ } header, { } payload))
            {
                byte[] reply = header.Request switch
                {
                    HarnessRequest.SaveState => State,
                    _ => HarnessPayloads.Status(0),
                };
                if (header.Request == HarnessRequest.LoadState)
                {
                    Loaded = payload;
                }

                if (header.IsReply)
                {
                    continue; // MiniVmm's answer to HELLO
                }

                Send(_socket, HarnessFrameHeader.ForReply(header.Request, reply.Length), reply);
                if (header.Request == HarnessRequest.Shutdown)
                {
                    return;
                }
            }
        }
        catch (Exception error) when (error is IOException or SocketException or ObjectDisposedException or NativeCallException)
        {
            // MiniVmm went away.
        }
    }

    private (HarnessFrameHeader Header, byte[] Payload)? ReadFrame()
    {
        var descriptors = new List<FileDescriptorHandle>();
        byte[] head = new byte[HarnessFrameHeader.Length];
        int got = 0;
        while (got < head.Length)
        {
            int count = UnixSocketMessages.Receive(_socket.SafeHandle, head.AsSpan(got), descriptors);
            if (count == 0)
            {
                return null;
            }

            got += count;
        }

        descriptors.ForEach(d => d.Dispose());
        HarnessFrameHeader header = HarnessFrameHeader.Read(head);
        byte[] payload = new byte[header.Size];
        int read = 0;
        while (read < payload.Length)
        {
            int count = _socket.Receive(payload, read, payload.Length - read, SocketFlags.None);
            if (count == 0)
            {
                return null;
            }

            read += count;
        }

        return (header, payload);
    }

    private static void Send(Socket socket, HarnessFrameHeader header, byte[] payload)
    {
        byte[] frame = new byte[HarnessFrameHeader.Length + payload.Length];
        header.WriteTo(frame);
        payload.CopyTo(frame, HarnessFrameHeader.Length);
        int sent = 0;
        while (sent < frame.Length)
        {
            sent += socket.Send(frame, sent, frame.Length - sent, SocketFlags.None);
        }
    }
}
