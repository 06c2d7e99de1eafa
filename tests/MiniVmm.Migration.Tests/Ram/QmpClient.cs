using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>A minimal QMP client over a UNIX socket: greeting, qmp_capabilities, commands; events are skipped.</summary>
internal sealed class QmpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly StreamReader _reader;
    private readonly StreamWriter _writer;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        var stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(stream, Encoding.UTF8);
        _writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
    }

    /// <summary>Connects (retrying until the socket appears), reads the greeting and negotiates capabilities.</summary>
    public static QmpClient Connect(string path, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Connect(new UnixDomainSocketEndPoint(path));
                socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
                var client = new QmpClient(socket);
                JsonNode greeting = client.ReadMessage();
                Assert.That(greeting["QMP"], Is.Not.Null, "QMP greeting");
                client.Execute("qmp_capabilities");
                return client;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                socket.Dispose();
                Thread.Sleep(20);
            }
        }
    }

    /// <summary>Runs a command and returns its "return" member; a QMP error throws.</summary>
    public JsonNode? Execute(string command, object? arguments = null)
    {
        var request = new JsonObject { ["execute"] = command };
        if (arguments is not null)
        {
            request["arguments"] = JsonSerializer.SerializeToNode(arguments);
        }

        _writer.WriteLine(request.ToJsonString());
        while (true)
        {
            JsonNode reply = ReadMessage();
            if (reply["event"] is not null)
            {
                continue;
            }

            if (reply["error"] is { } error)
            {
                throw new InvalidOperationException($"QMP {command} failed: {error.ToJsonString()}");
            }

            return reply["return"];
        }
    }

    public void Dispose()
    {
        _reader.Dispose();
        _writer.Dispose();
        _socket.Dispose();
    }

    private JsonNode ReadMessage()
    {
        string line = _reader.ReadLine() ?? throw new IOException("QMP connection closed");
        return JsonNode.Parse(line) ?? throw new IOException($"QMP sent '{line}'");
    }
}
