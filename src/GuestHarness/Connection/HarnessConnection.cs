using MiniVmm.GuestHarness.Protocol;

namespace MiniVmm.GuestHarness.Connection;

/// <summary>
/// A harness that finished the handshake (HELLO answered, memory table and dirty logs sent):
/// the requests MiniVmm makes of it, each checked and turned into a
/// <see cref="GuestHarnessException"/> naming the harness when it fails.
/// </summary>
public sealed class HarnessConnection : IDisposable
{
    private static readonly TimeSpan ShutdownWait = TimeSpan.FromSeconds(1);

    private readonly HarnessChannel _channel;
    private readonly TimeSpan _timeout;
    private readonly object _throttleGate = new();
    private int _sentThrottle;

    /// <summary>Wraps a channel whose handshake is done; requests wait at most <paramref name="timeout"/>.</summary>
    public HarnessConnection(HarnessChannel channel, int processId, HarnessFeatures features, TimeSpan timeout)
    {
        _channel = channel;
        _timeout = timeout;
        ProcessId = processId;
        Features = features;
    }

    /// <summary>The harness's process id (0 when unknown).</summary>
    public int ProcessId { get; }

    /// <summary>The features MiniVmm accepted.</summary>
    public HarnessFeatures Features { get; }

    /// <summary>How errors name the harness.</summary>
    public string Name => _channel.Name;

    /// <summary>Whether the connection is closed.</summary>
    public bool IsClosed => _channel.IsClosed;

    /// <summary>The channel underneath (for its <see cref="HarnessChannel.Closed"/> event).</summary>
    public HarnessChannel Channel => _channel;

    /// <summary>SET_MEM_TABLE: the regions, with one RAM memfd per region attached.</summary>
    public void SetMemTable(IReadOnlyList<HarnessMemoryRegion> regions, ReadOnlySpan<int> memfds) =>
        ExpectOk(HarnessRequest.SetMemTable, HarnessPayloads.MemTable(regions), memfds);

    /// <summary>SET_DIRTY_LOG: one log per region, with its memfd attached.</summary>
    public void SetDirtyLog(IReadOnlyList<HarnessDirtyLog> logs, ReadOnlySpan<int> memfds) =>
        ExpectOk(HarnessRequest.SetDirtyLog, HarnessPayloads.DirtyLogs(logs), memfds);

    /// <summary>PAUSE: returns once the harness writes nothing more and every write is marked.</summary>
    public void Pause() => ExpectOk(HarnessRequest.Pause, []);

    /// <summary>RUN: returns once the harness's vCPUs run.</summary>
    public void Run() => ExpectOk(HarnessRequest.Run, []);

    /// <summary>SAVE_STATE: the harness's state bytes (at most 16 MiB; checked before they were read).</summary>
    public byte[] SaveState() =>
        _channel.Request(HarnessRequest.SaveState, [], [], _timeout).Payload;

    /// <summary>LOAD_STATE: gives the harness state bytes; a refusal throws with its errno.</summary>
    public void LoadState(ReadOnlySpan<byte> state) => ExpectOk(HarnessRequest.LoadState, state);

    /// <summary>
    /// THROTTLE, when the harness accepted it and the value differs from the one it last
    /// acknowledged; otherwise nothing. Callers take turns: a change made while an earlier
    /// THROTTLE still waits for its reply is compared with that one's value once it is
    /// acknowledged, so it is never skipped as "unchanged".
    /// </summary>
    public void Throttle(int percent)
    {
        if ((Features & HarnessFeatures.Throttle) == 0)
        {
            return;
        }

        lock (_throttleGate)
        {
            if (Volatile.Read(ref _sentThrottle) == percent)
            {
                return;
            }

            ExpectOk(HarnessRequest.Throttle, HarnessPayloads.Throttle(percent));
            Volatile.Write(ref _sentThrottle, percent);
        }
    }

    /// <summary>The throttle the harness last acknowledged.</summary>
    public int AcknowledgedThrottle => Volatile.Read(ref _sentThrottle);

    /// <summary>SHUTDOWN: asks the harness to exit, waiting briefly for its reply; failures are ignored.</summary>
    public void Shutdown()
    {
        try
        {
            _channel.Request(HarnessRequest.Shutdown, [], [], ShutdownWait);
        }
        catch (GuestHarnessException)
        {
            // It is going away either way: the socket closes next.
        }
    }

    /// <summary>Closes the connection; the harness sees the end of the stream.</summary>
    public void Dispose() => _channel.Dispose();

    private void ExpectOk(HarnessRequest request, ReadOnlySpan<byte> payload, ReadOnlySpan<int> descriptors = default)
    {
        HarnessReply reply = _channel.Request(request, payload, descriptors, _timeout);
        long status;
        try
        {
            status = HarnessPayloads.ReadStatus(reply.Payload, $"{Name}: reply to {request}");
        }
        catch (HarnessProtocolException error)
        {
            throw new GuestHarnessException(error.Message, error);
        }

        if (status != 0)
        {
            throw new GuestHarnessException($"{Name} refused {request}: {DescribeStatus(status)}") { Status = status };
        }
    }

    /// <summary>A status as text: <c>-22 (EINVAL)</c>.</summary>
    public static string DescribeStatus(long status) => status switch
    {
        -1 => "-1 (EPERM)",
        -5 => "-5 (EIO)",
        -12 => "-12 (ENOMEM)",
        -16 => "-16 (EBUSY)",
        -22 => "-22 (EINVAL)",
        -38 => "-38 (ENOSYS)",
        _ => status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
