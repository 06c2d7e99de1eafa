using System.Buffers.Binary;

namespace MiniVmm.Migration.ReturnPath;

/// <summary>
/// The destination's end of the return path: writes <see cref="ReturnPathMessageType"/>
/// messages to the source over the same connection the migration stream arrives on. Every
/// message is flushed at once. Safe to call from any thread; once a write has failed, or the
/// SHUT went out, later messages are dropped (the source is no longer listening).
/// </summary>
public sealed class ReturnPathWriter : IDisposable
{
    private readonly System.IO.Stream _channel;
    private readonly object _gate = new();
    private Exception? _error;
    private bool _shut;
    private int _disposed;

    /// <summary>Creates the writer over <paramref name="channel"/>, which it does not own.</summary>
    public ReturnPathWriter(System.IO.Stream channel)
    {
        if (!channel.CanWrite)
        {
            throw new ArgumentException("the return path needs a writable channel", nameof(channel));
        }

        _channel = channel;
    }

    /// <summary>The first write failure, if any.</summary>
    public Exception? Error => _error;

    /// <summary>Bytes written so far.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Answers a PING command with its value.</summary>
    /// <exception cref="ReturnPathException">The channel failed.</exception>
    public void SendPong(uint value) => SendBe32(ReturnPathMessageType.Pong, value);

    /// <summary>Tells the source it may switch over: every device that had to approve has.</summary>
    /// <exception cref="ReturnPathException">The channel failed.</exception>
    public void SendSwitchoverAck() => Send(ReturnPathMessageType.SwitchoverAck, []);

    /// <summary>
    /// Tells the source the destination is done, successfully or not. Best effort: a failure
    /// to send is recorded, not thrown, because the load's own outcome is what matters then.
    /// </summary>
    public void SendShut(bool failed)
    {
        try
        {
            SendBe32(ReturnPathMessageType.Shut, failed ? 1u : 0u);
        }
        catch (ReturnPathException)
        {
            // Recorded in Error; the source will see the channel close instead.
        }

        lock (_gate)
        {
            _shut = true;
        }
    }

    private void SendBe32(ReturnPathMessageType type, uint value)
    {
        Span<byte> payload = stackalloc byte[sizeof(uint)];
        BinaryPrimitives.WriteUInt32BigEndian(payload, value);
        Send(type, payload);
    }

    private void Send(ReturnPathMessageType type, ReadOnlySpan<byte> payload)
    {
        Span<byte> message = stackalloc byte[4 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(message, (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], (ushort)payload.Length);
        payload.CopyTo(message[4..]);
        lock (_gate)
        {
            if (_shut || _error is not null || Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            try
            {
                _channel.Write(message);
                _channel.Flush();
                BytesWritten += message.Length;
            }
            catch (Exception error) when (error is IOException or ObjectDisposedException or NotSupportedException)
            {
                var failure = new ReturnPathException($"sending {type} to the source failed: {error.Message}", BytesWritten, error);
                _error = failure;
                throw failure;
            }
        }
    }

    /// <summary>Stops sending; the channel itself belongs to the incoming migration.</summary>
    public void Dispose() => Interlocked.Exchange(ref _disposed, 1);
}
