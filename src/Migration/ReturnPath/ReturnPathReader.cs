using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MiniVmm.Migration.ReturnPath;

/// <summary>
/// The source's end of the return path (QEMU's <c>source_return_path_thread</c>): a thread
/// that reads the destination's messages from the migration connection until the SHUT. It
/// records PONGs, the switchover ack, and the first failure — a malformed or unknown message, a
/// SHUT reporting an error, or the channel ending before the SHUT. Message lengths are checked
/// against the fixed length of their type before anything is read, so nothing is sized from
/// the channel.
/// </summary>
public sealed partial class ReturnPathReader : IDisposable
{
    private const int HeaderSize = 4;
    private const int MaxPayload = 12;

    private readonly System.IO.Stream _channel;
    private readonly ILogger _logger;
    private readonly ManualResetEventSlim _acked = new(false);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Thread? _thread;
    private long _offset;
    private long _lastPong = -1;
    private volatile ReturnPathException? _error;
    private int _disposed;

    private readonly Action? _failed;

    /// <summary>Creates the reader over <paramref name="channel"/> (not owned), which must be readable.</summary>
    /// <param name="channel">The migration connection.</param>
    /// <param name="logger">Where messages and failures are logged.</param>
    /// <param name="failed">
    /// Called on the reader thread when the return path fails, e.g. to shut the connection so
    /// that a write blocked on a destination that stopped reading wakes up.
    /// </param>
    public ReturnPathReader(System.IO.Stream channel, ILogger? logger = null, Action? failed = null)
    {
        _failed = failed;
        if (!channel.CanRead)
        {
            throw new ArgumentException("the return path needs a readable channel", nameof(channel));
        }

        _channel = channel;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Whether the destination has sent SWITCHOVER_ACK.</summary>
    public bool SwitchoverAcked => _acked.IsSet;

    /// <summary>The value of the latest PONG, or null before the first.</summary>
    public uint? LastPong => Interlocked.Read(ref _lastPong) is >= 0 and var value ? (uint)value : null;

    /// <summary>Why the return path failed, once it has.</summary>
    public ReturnPathException? Error => _error;

    /// <summary>Completes when the reader thread has ended: after the SHUT, or on a failure.</summary>
    public Task Finished => _done.Task;

    /// <summary>Starts the reader thread.</summary>
    public void Start()
    {
        if (_thread is not null)
        {
            throw new InvalidOperationException("the return path reader already started");
        }

        _thread = new Thread(Run) { Name = "return_path", IsBackground = true };
        _thread.Start();
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the switchover ack; true once it has arrived.</summary>
    public bool WaitForSwitchoverAck(TimeSpan timeout, CancellationToken cancel)
    {
        try
        {
            return _acked.Wait(timeout, cancel);
        }
        catch (OperationCanceledException)
        {
            return _acked.IsSet;
        }
    }

    /// <summary>
    /// Waits for the destination's SHUT (QEMU's <c>await_return_path_close_on_source</c>).
    /// Migration thread, big lock not held.
    /// </summary>
    /// <exception cref="ReturnPathException">The destination reported a failure, or the return path broke first.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> fired first.</exception>
    public void WaitForShut(CancellationToken cancel)
    {
        _done.Task.Wait(cancel);
        if (_error is { } error)
        {
            throw error;
        }
    }

    private void Run()
    {
        Span<byte> header = stackalloc byte[HeaderSize];
        Span<byte> payload = stackalloc byte[MaxPayload];
        try
        {
            while (true)
            {
                long at = _offset;
                ReadExactly(header, "message header");
                var type = (ReturnPathMessageType)BinaryPrimitives.ReadUInt16BigEndian(header);
                ushort length = BinaryPrimitives.ReadUInt16BigEndian(header[2..]);
                int expected = ExpectedLength(type, length, at);
                Span<byte> body = payload[..expected];
                ReadExactly(body, $"{Name(type)} payload");
                if (Handle(type, body, at))
                {
                    return;
                }
            }
        }
        catch (ReturnPathException error)
        {
            _error = error;
            LogFailed(error.Message);
        }
        catch (Exception error) when (error is IOException or ObjectDisposedException or NotSupportedException)
        {
            _error = new ReturnPathException($"reading from the destination failed: {error.Message}", _offset, error);
            LogFailed(_error.Message);
        }
        finally
        {
            _done.TrySetResult();
        }

        if (_error is not null)
        {
            _failed?.Invoke();
        }
    }

    /// <summary>Acts on one message; true when the destination has shut the return path.</summary>
    private bool Handle(ReturnPathMessageType type, ReadOnlySpan<byte> body, long at)
    {
        switch (type)
        {
            case ReturnPathMessageType.Shut:
                uint status = BinaryPrimitives.ReadUInt32BigEndian(body);
                LogShut(status);
                if (status != 0)
                {
                    throw new ReturnPathException($"RP: Sibling indicated error {status} (the destination failed to load the migration)", at);
                }

                return true;
            case ReturnPathMessageType.Pong:
                uint value = BinaryPrimitives.ReadUInt32BigEndian(body);
                Interlocked.Exchange(ref _lastPong, value);
                LogPong(value);
                return false;
            case ReturnPathMessageType.SwitchoverAck:
                LogSwitchoverAck();
                _acked.Set();
                return false;
            default:
                throw PostcopyMessage(type, at);
        }
    }

    /// <summary>The payload length <paramref name="type"/> must have; anything else fails the return path.</summary>
    private static int ExpectedLength(ReturnPathMessageType type, ushort length, long at)
    {
        int expected = type switch
        {
            ReturnPathMessageType.Shut or ReturnPathMessageType.Pong or ReturnPathMessageType.ResumeAck => 4,
            ReturnPathMessageType.RequestPages => 12,
            ReturnPathMessageType.SwitchoverAck => 0,
            ReturnPathMessageType.RequestPagesById or ReturnPathMessageType.ReceivedBitmap => -1,
            _ => throw new ReturnPathException(
                $"RP: Received invalid message 0x{(ushort)type:x4} length 0x{length:x4}", at),
        };
        if (expected < 0)
        {
            throw PostcopyMessage(type, at);
        }

        if (length != expected)
        {
            throw new ReturnPathException(
                $"RP: Received '{Name(type)}' message (0x{(ushort)type:x4}) with bad length {length} expecting {expected}", at);
        }

        return expected;
    }

    private static ReturnPathException PostcopyMessage(ReturnPathMessageType type, long at) =>
        new($"RP: Received '{Name(type)}' message (0x{(ushort)type:x4}), a postcopy message, but MiniVmm does not do postcopy", at);

    private void ReadExactly(Span<byte> buffer, string what)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int read = _channel.Read(buffer[done..]);
            if (read == 0)
            {
                throw new ReturnPathException(
                    $"the destination closed the return path before it sent SHUT (while reading the {what})", _offset);
            }

            done += read;
            _offset += read;
        }
    }

    private static string Name(ReturnPathMessageType type) => type switch
    {
        ReturnPathMessageType.Shut => "SHUT",
        ReturnPathMessageType.Pong => "PONG",
        ReturnPathMessageType.RequestPagesById => "REQ_PAGES_ID",
        ReturnPathMessageType.RequestPages => "REQ_PAGES",
        ReturnPathMessageType.ReceivedBitmap => "RECV_BITMAP",
        ReturnPathMessageType.ResumeAck => "RESUME_ACK",
        ReturnPathMessageType.SwitchoverAck => "SWITCHOVER_ACK",
        _ => "INVALID",
    };

    /// <summary>
    /// Waits for the reader thread. Call once the channel is shut down or closed, which is
    /// what ends a read that is still waiting.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_thread is { } thread && thread != Thread.CurrentThread)
        {
            thread.Join();
        }

        _acked.Dispose();
    }

    [LoggerMessage(EventId = 3501, Level = LogLevel.Debug, Message = "return path: PONG {Value}")]
    private partial void LogPong(uint value);

    [LoggerMessage(EventId = 3502, Level = LogLevel.Information, Message = "return path: the destination acked the switchover")]
    private partial void LogSwitchoverAck();

    [LoggerMessage(EventId = 3503, Level = LogLevel.Information, Message = "return path: SHUT {Status}")]
    private partial void LogShut(uint status);

    [LoggerMessage(EventId = 3504, Level = LogLevel.Warning, Message = "return path failed: {Reason}")]
    private partial void LogFailed(string reason);
}
