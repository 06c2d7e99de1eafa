using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace MiniVmm.Host.Demo;

/// <summary>
/// A small QMP client for the demo: reads the greeting, sends commands and reads their replies,
/// keeping the events that arrive meanwhile. QMP servers send one message per line.
/// </summary>
public sealed class DemoQmpClient : IAsyncDisposable
{
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;
    private readonly List<JsonObject> _events = [];

    private DemoQmpClient(Socket socket)
    {
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    /// <summary>Connects to the UNIX socket at <paramref name="path"/> and returns the greeting.</summary>
    public static async Task<(DemoQmpClient Client, JsonObject Greeting)> ConnectAsync(string path, CancellationToken cancellation)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellation).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var client = new DemoQmpClient(socket);
        JsonObject greeting = await client.ReadMessageAsync(cancellation).ConfigureAwait(false);
        return (client, greeting);
    }

    /// <summary>Sends a command and returns its reply (a <c>return</c> or an <c>error</c>).</summary>
    public Task<JsonObject> ExecuteAsync(string command, CancellationToken cancellation) =>
        ExecuteAsync(command, null, cancellation);

    /// <summary>Sends a command with arguments and returns its reply (a <c>return</c> or an <c>error</c>).</summary>
    public async Task<JsonObject> ExecuteAsync(string command, JsonObject? arguments, CancellationToken cancellation)
    {
        var request = new JsonObject { ["execute"] = command };
        if (arguments is not null)
        {
            request["arguments"] = arguments;
        }

        await SendAsync(request, cancellation).ConfigureAwait(false);
        while (true)
        {
            JsonObject message = await ReadMessageAsync(cancellation).ConfigureAwait(false);
            if (!message.ContainsKey("event"))
            {
                return message;
            }

            _events.Add(message);
        }
    }

    /// <summary>Sends a command and returns its <c>return</c> member; an <c>error</c> reply throws.</summary>
    public async Task<JsonNode?> ReturnOfAsync(string command, JsonObject? arguments, CancellationToken cancellation)
    {
        JsonObject reply = await ExecuteAsync(command, arguments, cancellation).ConfigureAwait(false);
        return reply["error"] is { } error
            ? throw new InvalidOperationException($"{command}: {error["desc"]}")
            : reply["return"];
    }

    /// <summary>Events received so far and not yet taken.</summary>
    public IReadOnlyList<JsonObject> PendingEvents => _events;

    private async Task SendAsync(JsonObject request, CancellationToken cancellation)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(request.ToJsonString() + "\n");
        await _stream.WriteAsync(bytes, cancellation).ConfigureAwait(false);
    }

    /// <summary>Waits for an event named <paramref name="name"/>, also among those already received.</summary>
    public async Task<JsonObject> WaitForEventAsync(string name, CancellationToken cancellation)
    {
        while (true)
        {
            JsonObject? seen = _events.Find(e => (string?)e["event"] == name);
            if (seen is not null)
            {
                _events.Remove(seen);
                return seen;
            }

            JsonObject message = await ReadMessageAsync(cancellation).ConfigureAwait(false);
            if (message.ContainsKey("event"))
            {
                _events.Add(message);
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _reader.Dispose();
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    private async Task<JsonObject> ReadMessageAsync(CancellationToken cancellation)
    {
        string line = await _reader.ReadLineAsync(cancellation).ConfigureAwait(false)
            ?? throw new IOException("the QMP server closed the connection");
        return JsonNode.Parse(line) as JsonObject
            ?? throw new InvalidDataException($"the QMP server sent something that is not an object: {line}");
    }
}
