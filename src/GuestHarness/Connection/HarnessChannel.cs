using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using MiniVmm.GuestHarness.Protocol;
using MiniVmm.Native;

namespace MiniVmm.GuestHarness.Connection;

/// <summary>
/// One harness's socket: frames with descriptors out, frames in, one request outstanding at a
/// time. After the handshake a reader thread takes every frame the harness sends: a reply
/// completes the request it answers (a late reply to a request that timed out is dropped), and
/// anything else, end of stream included, closes the channel, fails the outstanding request at
/// once and raises <see cref="Closed"/>. The reader never takes the big lock, so a caller that
/// holds it while it waits for a reply is always woken.
/// </summary>
public sealed partial class HarnessChannel : IDisposable
{
    /// <summary>A payload buffer starts at this size and doubles as bytes arrive.</summary>
    public const int PayloadChunk = 64 * 1024;

    private readonly Socket _socket;
    private readonly TimeSpan _sendTimeout;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly SemaphoreSlim _requestGate = new(1, 1);
    private PendingRequest? _pending;
    private string? _closedReason;
    private Thread? _reader;
    private int _disposed;

    /// <summary>
    /// Wraps an accepted connection; <paramref name="name"/> names the harness in every error.
    /// A send that cannot go on for <paramref name="sendTimeout"/> (a harness that stopped
    /// reading) fails instead of blocking.
    /// </summary>
    public HarnessChannel(Socket socket, string name, TimeSpan sendTimeout, ILogger logger)
    {
        _socket = socket;
        _sendTimeout = sendTimeout;
        _logger = logger;
        Name = name;
    }

    /// <summary>How errors name this harness, e.g. <c>guest harness (pid 42) on /tmp/h.sock</c>.</summary>
    public string Name { get; private set; }

    /// <summary>
    /// Raised once, on the reader thread, when the channel closes (end of stream, a socket error,
    /// a protocol violation or <see cref="Dispose"/>), with the reason. Handlers must not block on
    /// the big lock here: hand the work to another thread.
    /// </summary>
    public event Action<string>? Closed;

    /// <summary>Whether the channel is closed.</summary>
    public bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _closedReason is not null;
            }
        }
    }

    /// <summary>The process id of the peer (SO_PEERCRED), or 0 when the socket cannot say.</summary>
    public int PeerProcessId()
    {
        Span<byte> credentials = stackalloc byte[12];
        try
        {
            const int SolSocket = 1;
            const int SoPeerCred = 17;
            return _socket.GetRawSocketOption(SolSocket, SoPeerCred, credentials) >= 4
                ? BitConverter.ToInt32(credentials)
                : 0;
        }
        catch (SocketException)
        {
            return 0;
        }
    }

    /// <summary>Renames the harness in later errors (once its process id is known).</summary>
    public void Rename(string name) => Name = name;

    /// <summary>
    /// Reads the harness's first frame, which must be HELLO with <c>u64 features</c>, waiting at
    /// most <paramref name="timeout"/>. Before <see cref="StartReading"/>.
    /// </summary>
    /// <exception cref="GuestHarnessException">No HELLO in time, the peer closed, or the frame is not a HELLO.</exception>
    public HarnessFeatures ReceiveHello(TimeSpan timeout)
    {
        _socket.ReceiveTimeout = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
        try
        {
            (HarnessFrameHeader header, byte[] payload) = ReadFrame(isHandshake: true)
                ?? throw new GuestHarnessException($"{Name} closed the connection before HELLO");
            if (header.Request != HarnessRequest.Hello || header.IsReply)
            {
                throw new GuestHarnessException($"{Name}: the first frame must be HELLO, not {header}");
            }

            return (HarnessFeatures)HarnessPayloads.ReadU64(payload, $"{Name}: HELLO");
        }
        catch (Exception error) when (error is NativeCallException { Errno: Errno.EAGAIN }
            or SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock })
        {
            throw new GuestHarnessException(
                $"{Name} sent no HELLO within {timeout.TotalMilliseconds:0} ms", error);
        }
        catch (HarnessProtocolException error)
        {
            throw new GuestHarnessException($"{Name}: {error.Message}", error);
        }
        finally
        {
            _socket.ReceiveTimeout = 0;
        }
    }

    /// <summary>Sends a reply frame (the answer to HELLO). Before <see cref="StartReading"/>.</summary>
    /// <exception cref="GuestHarnessException">The harness is gone (it closed the socket after its HELLO).</exception>
    public void Reply(HarnessRequest request, ReadOnlySpan<byte> payload)
    {
        try
        {
            Send(HarnessFrameHeader.ForReply(request, payload.Length), payload, [], Deadline(_sendTimeout));
        }
        catch (Exception error) when (error is NativeCallException or IOException or ObjectDisposedException or TimeoutException)
        {
            throw new GuestHarnessException($"{Name}: sending the reply to {request} failed: {error.Message}", error);
        }
    }

    /// <summary>Starts the reader thread; from now on only <see cref="Request"/> talks to the harness.</summary>
    public void StartReading()
    {
        if (_reader is not null)
        {
            throw new InvalidOperationException("the reader already runs");
        }

        _reader = new Thread(ReadLoop) { Name = "guest harness reader", IsBackground = true };
        _reader.Start();
    }

    /// <summary>
    /// Sends <paramref name="request"/> with <paramref name="payload"/> and
    /// <paramref name="descriptors"/> and waits for its reply, all within
    /// <paramref name="timeout"/> — the send included, so a harness that stops reading cannot
    /// stretch a request (a PAUSE, and so a VM stop) beyond it. Requests from several threads
    /// take turns.
    /// </summary>
    /// <exception cref="GuestHarnessException">No reply in time, or the channel closed.</exception>
    public HarnessReply Request(
        HarnessRequest request, ReadOnlySpan<byte> payload, ReadOnlySpan<int> descriptors, TimeSpan timeout)
    {
        long started = Environment.TickCount64;
        if (!_requestGate.Wait(timeout))
        {
            throw Timeout(request, timeout, "another request was still waiting for its reply");
        }

        try
        {
            var pending = new PendingRequest(request);
            lock (_gate)
            {
                if (_closedReason is { } reason)
                {
                    throw new GuestHarnessException($"{Name} is gone ({reason}): cannot send {request}");
                }

                _pending = pending;
            }

            try
            {
                Send(HarnessFrameHeader.ForRequest(request, payload.Length), payload, descriptors, started + (long)timeout.TotalMilliseconds);
            }
            catch (Exception error) when (error is TimeoutException or NativeCallException { Errno: Errno.EAGAIN })
            {
                ClearPending(pending);
                throw new GuestHarnessException(
                    $"{Name}: {request} could not be sent within {timeout.TotalMilliseconds:0} ms: the harness does not read", error);
            }
            catch (Exception error) when (error is NativeCallException or IOException or ObjectDisposedException)
            {
                ClearPending(pending);
                throw new GuestHarnessException($"{Name}: sending {request} failed: {error.Message}", error);
            }

            TimeSpan left = timeout - TimeSpan.FromMilliseconds(Environment.TickCount64 - started);
            if (!pending.Done.Wait(left > TimeSpan.Zero ? left : TimeSpan.Zero))
            {
                ClearPending(pending);
                throw Timeout(request, timeout, "no reply");
            }

            return pending.Reply ?? throw new GuestHarnessException(
                $"{Name} went away while {request} waited for its reply ({pending.Failure})");
        }
        finally
        {
            _requestGate.Release();
        }
    }

    /// <summary>Closes the socket (which stops the reader) and fails an outstanding request; later calls do nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Close("MiniVmm closed the connection");
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Not connected any more: nothing to wake.
        }
        catch (ObjectDisposedException)
        {
        }

        if (_reader is { } reader && reader != Thread.CurrentThread)
        {
            reader.Join();
        }

        _socket.Dispose();
    }

    private GuestHarnessException Timeout(HarnessRequest request, TimeSpan timeout, string what) =>
        new($"{Name}: {request} got {what} within {timeout.TotalMilliseconds:0} ms");

    private void ClearPending(PendingRequest pending)
    {
        lock (_gate)
        {
            if (_pending == pending)
            {
                _pending = null;
            }
        }
    }

    private static long Deadline(TimeSpan timeout) => Environment.TickCount64 + (long)timeout.TotalMilliseconds;

    /// <summary>
    /// Sends one frame by <paramref name="deadline"/> (a <see cref="Environment.TickCount64"/>):
    /// each partial send may block only for what is left (SO_SNDTIMEO, then EAGAIN), so a harness
    /// that reads slowly cannot stretch it. A frame cut in the middle leaves nothing the harness
    /// could understand after it: the channel is then closed.
    /// </summary>
    /// <exception cref="TimeoutException">The deadline passed between two partial sends.</exception>
    /// <exception cref="NativeCallException">sendmsg failed; EAGAIN when the deadline passed inside it.</exception>
    private void Send(HarnessFrameHeader header, ReadOnlySpan<byte> payload, ReadOnlySpan<int> descriptors, long deadline)
    {
        byte[] frame = new byte[HarnessFrameHeader.Length + payload.Length];
        header.WriteTo(frame);
        payload.CopyTo(frame.AsSpan(HarnessFrameHeader.Length));
        int sent = 0;
        try
        {
            while (sent < frame.Length)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    throw new TimeoutException($"{sent} of {frame.Length} bytes went out before the deadline");
                }

                _socket.SendTimeout = (int)Math.Min(left, int.MaxValue);
                sent += UnixSocketMessages.Send(_socket.SafeHandle, frame.AsSpan(sent), sent == 0 ? descriptors : []);
            }
        }
        catch (Exception) when (sent > 0)
        {
            Close($"a {header.Request} frame was cut after {sent} of {frame.Length} bytes (the harness stopped reading)");
            throw;
        }
    }

    private void ReadLoop()
    {
        string reason;
        try
        {
            while (true)
            {
                if (ReadFrame(isHandshake: false) is not { } frame)
                {
                    reason = "the harness closed the connection";
                    break;
                }

                Deliver(frame.Header, frame.Payload);
            }
        }
        catch (HarnessProtocolException error)
        {
            reason = $"protocol error: {error.Message}";
            LogProtocolError(Name, error.Message);
        }
        catch (Exception error) when (error is NativeCallException or IOException or SocketException or ObjectDisposedException)
        {
            reason = IsClosed ? "MiniVmm closed the connection" : $"the connection failed: {error.Message}";
        }

        Close(reason);
    }

    private void Deliver(HarnessFrameHeader header, byte[] payload)
    {
        if (!header.IsReply)
        {
            throw new HarnessProtocolException($"the harness sent a request ({header}); after HELLO it may only reply");
        }

        lock (_gate)
        {
            if (_pending is { } pending && pending.Request == header.Request)
            {
                _pending = null;
                pending.Complete(new HarnessReply(header.Request, payload));
                return;
            }
        }

        LogStaleReply(Name, header.Request);
    }

    private void Close(string reason)
    {
        PendingRequest? pending;
        lock (_gate)
        {
            if (_closedReason is not null)
            {
                return;
            }

            _closedReason = reason;
            pending = _pending;
            _pending = null;
        }

        pending?.Fail(reason);
        LogClosed(Name, reason);
        Closed?.Invoke(reason);
    }

    /// <summary>Reads one frame; null at a clean end of stream before its first byte.</summary>
    private (HarnessFrameHeader Header, byte[] Payload)? ReadFrame(bool isHandshake)
    {
        Span<byte> headerBytes = stackalloc byte[HarnessFrameHeader.Length];
        var descriptors = new List<FileDescriptorHandle>();
        int got = 0;
        while (got < headerBytes.Length)
        {
            int count = UnixSocketMessages.Receive(_socket.SafeHandle, headerBytes[got..], descriptors);
            if (count == 0)
            {
                if (got == 0 && descriptors.Count == 0)
                {
                    return null;
                }

                throw new HarnessProtocolException($"the stream ended inside a frame header ({got} of {HarnessFrameHeader.Length} bytes)");
            }

            got += count;
        }

        if (descriptors.Count != 0)
        {
            foreach (FileDescriptorHandle descriptor in descriptors)
            {
                descriptor.Dispose();
            }

            throw new HarnessProtocolException($"the harness passed {descriptors.Count} file descriptor(s); no message to MiniVmm carries any");
        }

        HarnessFrameHeader header = HarnessFrameHeader.Read(headerBytes);
        if (header.FrameVersion != HarnessFrameHeader.Version || header.UnknownFlags != 0)
        {
            throw new HarnessProtocolException($"unsupported frame flags 0x{header.Flags:x} (version {header.FrameVersion}; this side speaks {HarnessFrameHeader.Version})");
        }

        HarnessRequest expecting = isHandshake ? HarnessRequest.Hello : header.Request;
        int limit = HarnessPayloads.MaxIncomingPayload(expecting);
        if (header.Size > (uint)limit)
        {
            throw new HarnessProtocolException($"{header}: more than the {limit} bytes such a frame may carry");
        }

        return (header, ReadPayload(header));
    }

    /// <summary>
    /// Reads a payload whose size was checked against its limit. The buffer grows with the bytes
    /// that arrive (doubling from <see cref="PayloadChunk"/>), so a harness that announces 16 MiB
    /// and sends a few bytes makes MiniVmm hold a few bytes, not 16 MiB.
    /// </summary>
    private byte[] ReadPayload(HarnessFrameHeader header)
    {
        if (header.Size == 0)
        {
            return [];
        }

        byte[] payload = new byte[Math.Min(header.Size, PayloadChunk)];
        int read = 0;
        while (read < header.Size)
        {
            if (read == payload.Length)
            {
                Array.Resize(ref payload, (int)Math.Min(header.Size, 2L * payload.Length));
            }

            int count = _socket.Receive(payload, read, payload.Length - read, SocketFlags.None);
            if (count == 0)
            {
                throw new HarnessProtocolException($"{header}: the stream ended after {read} payload bytes");
            }

            read += count;
        }

        return payload;
    }

    private sealed class PendingRequest(HarnessRequest request)
    {
        public HarnessRequest Request { get; } = request;

        public ManualResetEventSlim Done { get; } = new();

        public HarnessReply? Reply { get; private set; }

        public string? Failure { get; private set; }

        public void Complete(HarnessReply reply)
        {
            Reply = reply;
            Done.Set();
        }

        public void Fail(string reason)
        {
            Failure = reason;
            Done.Set();
        }
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "{Harness}: dropped a reply to {Request} that nothing waits for (it came too late)")]
    private partial void LogStaleReply(string harness, HarnessRequest request);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "{Harness} broke the protocol: {Detail}")]
    private partial void LogProtocolError(string harness, string detail);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Information, Message = "{Harness}: connection closed: {Reason}")]
    private partial void LogClosed(string harness, string reason);
}
