using System.Collections.Concurrent;
using System.Net.Sockets;
using MiniVmm.GuestHarness.Protocol;
using MiniVmm.Native;

namespace MiniVmm.GuestHarness.Tests;

/// <summary>
/// A harness peer written for tests, for what the Rust reference harness would never do: it
/// replies late, not at all, too much, or breaks the protocol on purpose. It speaks the real
/// protocol over the real socket and maps the real memfds it is given.
/// </summary>
public sealed unsafe class ScriptedHarness : IDisposable
{
    private readonly Socket _socket;
    private readonly Thread _thread;
    private readonly List<FileDescriptorHandle> _ramFds = [];
    private readonly List<FileDescriptorHandle> _logFds = [];
    private readonly List<MemoryMapping> _mappings = [];
    private int _disposed;

    private ScriptedHarness(Socket socket, HarnessFeatures features, Func<HarnessRequest, byte[], Reply?> script)
    {
        _socket = socket;
        Script = script;
        Send(HarnessFrameHeader.ForRequest(HarnessRequest.Hello, 8), HarnessPayloads.U64((ulong)features), []);
        (HarnessFrameHeader header, byte[] payload) = ReadFrame();
        Assert.That(header.IsReply && header.Request == HarnessRequest.Hello, Is.True, header.ToString());
        Accepted = HarnessPayloads.ReadU64(payload, "HELLO reply");
        _thread = new Thread(Loop) { IsBackground = true, Name = "scripted harness" };
        _thread.Start();
    }

    /// <summary>What the script answers: a payload (null = no reply at all), after a delay.</summary>
    public sealed record Reply(byte[] Payload, int DelayMs = 0, HarnessRequest? As = null);

    /// <summary>Answers every request with status 0 (SAVE_STATE with 4 bytes).</summary>
    public static Reply? Cooperative(HarnessRequest request, byte[] payload) =>
        request == HarnessRequest.SaveState ? new Reply([1, 2, 3, 4]) : new Reply(HarnessPayloads.Status(0));

    /// <summary>The script; replaceable while the peer runs.</summary>
    public Func<HarnessRequest, byte[], Reply?> Script { get; set; }

    /// <summary>What MiniVmm replied to HELLO (features, or a negative status).</summary>
    public ulong Accepted { get; }

    /// <summary>Every request received, in order.</summary>
    public ConcurrentQueue<HarnessRequest> Received { get; } = new();

    /// <summary>The memory table received.</summary>
    public IReadOnlyList<HarnessMemoryRegion> Regions { get; private set; } = [];

    /// <summary>The dirty-log entries received.</summary>
    public IReadOnlyList<HarnessDirtyLog> Logs { get; private set; } = [];

    /// <summary>The RAM memfds received.</summary>
    public IReadOnlyList<FileDescriptorHandle> RamFds => _ramFds;

    /// <summary>Set once both tables arrived and were mapped.</summary>
    public ManualResetEventSlim MemoryMapped { get; } = new();

    /// <summary>Set when the connection ended.</summary>
    public ManualResetEventSlim Ended { get; } = new();

    /// <summary>Region 0's RAM, mapped here.</summary>
    public MemoryMapping Ram => _mappings[0];

    /// <summary>Region 0's dirty log, mapped here.</summary>
    public MemoryMapping Log => _mappings[1];

    /// <summary>Connects to <paramref name="path"/>, sends HELLO with <paramref name="features"/> and reads the reply.</summary>
    public static ScriptedHarness Connect(string path, HarnessFeatures features = HarnessFeatures.State | HarnessFeatures.Throttle,
        Func<HarnessRequest, byte[], Reply?>? script = null)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        socket.ReceiveTimeout = 20000;
        return new ScriptedHarness(socket, features, script ?? Cooperative);
    }

    /// <summary>Writes a byte at a guest address through the mapping and marks its page as a harness must.</summary>
    public void WriteAndMark(long gpa, byte value)
    {
        Ram.Pointer[gpa] = value;
        long page = gpa >> 12;
        Interlocked.Or(ref ((ulong*)Log.Pointer)[page >> 6], 1UL << (int)(page & 63));
    }

    /// <summary>Sends raw bytes (for protocol violations).</summary>
    public void SendRaw(HarnessFrameHeader header, byte[] payload, int[] descriptors) => Send(header, payload, descriptors);

    /// <summary>Closes the socket as a crashing harness would.</summary>
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
        foreach (MemoryMapping mapping in _mappings)
        {
            mapping.Dispose();
        }

        foreach (FileDescriptorHandle fd in _ramFds.Concat(_logFds))
        {
            fd.Dispose();
        }
    }

    private void Loop()
    {
        try
        {
            while (true)
            {
                (HarnessFrameHeader header, byte[] payload, List<FileDescriptorHandle> fds) = ReadFrameWithFds();
                Received.Enqueue(header.Request);
                if (header.Request == HarnessRequest.SetMemTable)
                {
                    Regions = HarnessPayloads.ReadMemTable(payload);
                    _ramFds.AddRange(fds);
                }
                else if (header.Request == HarnessRequest.SetDirtyLog)
                {
                    Logs = HarnessPayloads.ReadDirtyLogs(payload);
                    _logFds.AddRange(fds);
                    _mappings.Add(MemoryMapping.Map(_ramFds[0], 0, (long)Regions[0].Size, MemoryProtection.ReadWrite, MappingFlags.Shared));
                    _mappings.Add(MemoryMapping.Map(_logFds[0], 0, (long)Logs[0].LogSize, MemoryProtection.ReadWrite, MappingFlags.Shared));
                    MemoryMapped.Set();
                }

                if (Script(header.Request, payload) is { } reply)
                {
                    if (reply.DelayMs > 0)
                    {
                        Thread.Sleep(reply.DelayMs);
                    }

                    Send(HarnessFrameHeader.ForReply(reply.As ?? header.Request, reply.Payload.Length), reply.Payload, []);
                }
            }
        }
        catch (Exception error) when (error is IOException or SocketException or ObjectDisposedException or NativeCallException)
        {
        }
        finally
        {
            Ended.Set();
        }
    }

    private void Send(HarnessFrameHeader header, byte[] payload, int[] descriptors)
    {
        byte[] frame = new byte[HarnessFrameHeader.Length + payload.Length];
        header.WriteTo(frame);
        payload.CopyTo(frame, HarnessFrameHeader.Length);
        int sent = UnixSocketMessages.Send(_socket.SafeHandle, frame, descriptors);
        while (sent < frame.Length)
        {
            sent += UnixSocketMessages.Send(_socket.SafeHandle, frame.AsSpan(sent), []);
        }
    }

    private (HarnessFrameHeader, byte[]) ReadFrame()
    {
        (HarnessFrameHeader header, byte[] payload, List<FileDescriptorHandle> fds) = ReadFrameWithFds();
        fds.ForEach(fd => fd.Dispose());
        return (header, payload);
    }

    private (HarnessFrameHeader, byte[], List<FileDescriptorHandle>) ReadFrameWithFds()
    {
        var fds = new List<FileDescriptorHandle>();
        byte[] head = new byte[HarnessFrameHeader.Length];
        int got = 0;
        while (got < head.Length)
        {
            int count = UnixSocketMessages.Receive(_socket.SafeHandle, head.AsSpan(got), fds);
            if (count == 0)
            {
                throw new IOException("MiniVmm closed the connection");
            }

            got += count;
        }

        HarnessFrameHeader header = HarnessFrameHeader.Read(head);
        byte[] payload = new byte[header.Size];
        int read = 0;
        while (read < payload.Length)
        {
            int count = _socket.Receive(payload, read, payload.Length - read, SocketFlags.None);
            if (count == 0)
            {
                throw new IOException("MiniVmm closed the connection inside a frame");
            }

            read += count;
        }

        return (header, payload, fds);
    }
}
