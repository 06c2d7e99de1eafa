using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using MiniVmm.Native;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// A QMP client for tests over a real UNIX socket: reads the greeting, sends commands (or raw
/// text), returns replies in order and collects events as they arrive. Every wait has a timeout.
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    /// <summary>How long any single wait lasts before the test fails.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    private readonly Socket _socket;
    private readonly Channel<JsonObject> _replies = Channel.CreateUnbounded<JsonObject>();
    private readonly List<JsonObject> _events = [];
    private readonly SemaphoreSlim _eventArrived = new(0);
    private readonly CancellationTokenSource _closing = new();
    private readonly Task _reader;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _reader = ReadLoopAsync();
    }

    /// <summary>The greeting the server sent.</summary>
    public JsonObject Greeting { get; private set; } = [];

    /// <summary>Every event received so far, in order.</summary>
    public IReadOnlyList<JsonObject> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Connects to <paramref name="socketPath"/> and reads the greeting.</summary>
    public static async Task<QmpClient> ConnectAsync(string socketPath)
    {
        using var timeout = new CancellationTokenSource(DefaultTimeout);
        Socket socket;
        while (true)
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), timeout.Token);
                break;
            }
            catch (SocketException error) when (error.SocketErrorCode == SocketError.ConnectionRefused && !timeout.IsCancellationRequested)
            {
                // The server creates the file when it binds and accepts once it listens: between the two, try again.
                socket.Dispose();
                await Task.Delay(20, timeout.Token);
            }
        }

        var client = new QmpClient(socket);
        client.Greeting = await client.ReadReplyAsync();
        return client;
    }

    /// <summary>Connects and completes capabilities negotiation.</summary>
    public static async Task<QmpClient> ConnectAndNegotiateAsync(string socketPath)
    {
        QmpClient client = await ConnectAsync(socketPath);
        JsonObject reply = await client.ExecuteAsync("qmp_capabilities");
        Assert.That(reply.ContainsKey("return"), Is.True, $"qmp_capabilities failed: {reply.ToJsonString()}");
        return client;
    }

    /// <summary>Sends a command and returns its reply (waiting at most <paramref name="timeout"/>, default <see cref="DefaultTimeout"/>).</summary>
    public Task<JsonObject> ExecuteAsync(string name, JsonObject? arguments = null, JsonNode? id = null, TimeSpan? timeout = null)
    {
        var request = new JsonObject { ["execute"] = name };
        if (arguments is not null)
        {
            request["arguments"] = arguments;
        }

        if (id is not null)
        {
            request["id"] = id;
        }

        return SendRawAsync(request.ToJsonString() + "\n", timeout);
    }

    /// <summary>
    /// Sends a command with <paramref name="descriptor"/> attached (SCM_RIGHTS, as QEMU's
    /// <c>getfd</c> expects) and returns its reply. The server gets its own copy of the descriptor.
    /// </summary>
    public async Task<JsonObject> ExecuteWithDescriptorAsync(string name, JsonObject? arguments, SafeHandle descriptor)
    {
        var request = new JsonObject { ["execute"] = name };
        if (arguments is not null)
        {
            request["arguments"] = arguments;
        }

        byte[] bytes = Encoding.UTF8.GetBytes(request.ToJsonString() + "\n");
        bool referenced = false;
        int sent;
        try
        {
            descriptor.DangerousAddRef(ref referenced);
            sent = UnixSocketMessages.Send(_socket.SafeHandle, bytes, [(int)descriptor.DangerousGetHandle()]);
        }
        finally
        {
            if (referenced)
            {
                descriptor.DangerousRelease();
            }
        }

        if (sent < bytes.Length)
        {
            using var timeout = new CancellationTokenSource(DefaultTimeout);
            await _socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None, timeout.Token);
        }

        return await ReadReplyAsync();
    }

    /// <summary>Sends raw text and returns the next reply.</summary>
    public async Task<JsonObject> SendRawAsync(string text, TimeSpan? timeout = null)
    {
        await WriteRawAsync(text);
        return await ReadReplyAsync(timeout);
    }

    /// <summary>Sends raw text without waiting for anything.</summary>
    public async Task WriteRawAsync(string text)
    {
        using var timeout = new CancellationTokenSource(DefaultTimeout);
        await _socket.SendAsync(Encoding.UTF8.GetBytes(text), SocketFlags.None, timeout.Token);
    }

    /// <summary>The next message that is not an event.</summary>
    public async Task<JsonObject> ReadReplyAsync(TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? DefaultTimeout;
        using var cancel = new CancellationTokenSource(limit);
        try
        {
            return await _replies.Reader.ReadAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no QMP reply within {limit.TotalSeconds} s");
        }
        catch (ChannelClosedException)
        {
            throw new IOException("the QMP server closed the connection before replying");
        }
    }

    /// <summary>Waits for an event named <paramref name="name"/> (one received earlier counts) and returns it.</summary>
    public async Task<JsonObject> WaitForEventAsync(string name, TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? DefaultTimeout);
        while (true)
        {
            JsonObject? found = Events.FirstOrDefault(e => (string?)e["event"] == name);
            if (found is not null)
            {
                return found;
            }

            try
            {
                await _eventArrived.WaitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException(
                    $"no {name} event within {(timeout ?? DefaultTimeout).TotalSeconds} s; got [{string.Join(", ", Events.Select(e => e["event"]))}]");
            }
        }
    }

    /// <summary>Waits until the server closes the connection.</summary>
    public Task WaitForCloseAsync() => _reader.WaitAsync(DefaultTimeout);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _closing.CancelAsync();
        _socket.Dispose();
        await _reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _closing.Dispose();
    }

    private async Task ReadLoopAsync()
    {
        await Task.Yield();
        try
        {
            using var stream = new NetworkStream(_socket, ownsSocket: false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (await reader.ReadLineAsync(_closing.Token) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }

                var message = (JsonObject)JsonNode.Parse(line)!;
                if (message.ContainsKey("event"))
                {
                    lock (_events)
                    {
                        _events.Add(message);
                    }

                    _eventArrived.Release();
                }
                else
                {
                    _replies.Writer.TryWrite(message);
                }
            }
        }
        catch (Exception error) when (error is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Closed.
        }
        finally
        {
            _replies.Writer.TryComplete();
        }
    }
}
