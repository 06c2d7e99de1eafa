using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// A real headless Chromium (the Debian package's /usr/bin/chromium) driven over the DevTools
/// protocol: load a page, collect the errors its console would show (console.error, uncaught
/// exceptions, and the browser's own log errors such as blocked or failed loads), and evaluate
/// expressions in it. Killed when disposed.
/// </summary>
public sealed partial class HeadlessChromium : IAsyncDisposable
{
    /// <summary>Where the Debian package installs it.</summary>
    public const string DefaultPath = "/usr/bin/chromium";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly TemporaryDirectory _profile;
    private readonly ClientWebSocket _socket;
    private readonly StringBuilder _stderr;
    private readonly List<string> _errors = [];
    private readonly Dictionary<int, TaskCompletionSource<JsonObject>> _replies = [];
    private readonly List<(string Method, TaskCompletionSource<JsonObject> Seen)> _awaited = [];
    private readonly Lock _gate = new();
    private readonly Task _reader;
    private int _nextId;

    private HeadlessChromium(Process process, TemporaryDirectory profile, ClientWebSocket socket, StringBuilder stderr)
    {
        _process = process;
        _profile = profile;
        _socket = socket;
        _stderr = stderr;
        _reader = Task.Run(ReadAsync);
    }

    /// <summary>What the browser wrote on stderr (for a failure message).</summary>
    public string Stderr => Tail(_stderr);

    /// <summary>The errors the page's console got so far, one line each.</summary>
    public IReadOnlyList<string> ConsoleErrors
    {
        get
        {
            lock (_gate)
            {
                return [.. _errors];
            }
        }
    }

    /// <summary>
    /// Starts Chromium and attaches to its page; null with <paramref name="why"/> when it cannot
    /// run on this machine (not installed, or it exits or never opens DevTools).
    /// </summary>
    public static async Task<(HeadlessChromium? Browser, string? Why)> TryStartAsync(string path = DefaultPath)
    {
        if (!File.Exists(path))
        {
            return (null, $"{path} is not installed (Debian package chromium; test.sh installs it)");
        }

        var profile = new TemporaryDirectory();
        var start = new ProcessStartInfo(path)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (string argument in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                     "--disable-extensions", "--disable-background-networking", "--remote-debugging-port=0",
                     $"--user-data-dir={profile.Path}", "about:blank",
                 })
        {
            start.ArgumentList.Add(argument);
        }

        var stderr = new StringBuilder();
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                listening.TrySetResult("");
                return;
            }

            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }

            if (DevToolsLine().Match(e.Data) is { Success: true } match)
            {
                listening.TrySetResult(match.Groups[1].Value);
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        string browserUrl = await listening.Task.WaitAsync(Timeout).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : "");
        if (browserUrl.Length == 0)
        {
            Kill(process);
            profile.Dispose();
            return (null, $"{path} did not open DevTools: {Tail(stderr)}");
        }

        // The page target's socket: http://HOST:PORT/json/list names it.
        var endpoint = new Uri(browserUrl);
        using var http = new HttpClient { Timeout = Timeout };
        JsonArray targets = JsonNode.Parse(await http.GetStringAsync($"http://{endpoint.Host}:{endpoint.Port}/json/list"))!.AsArray();
        string pageUrl = targets.Select(t => t!.AsObject()).First(t => t["type"]?.GetValue<string>() == "page")["webSocketDebuggerUrl"]!.GetValue<string>();
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri(pageUrl), CancellationToken.None).WaitAsync(Timeout);
        var browser = new HeadlessChromium(process, profile, socket, stderr);
        await browser.SendAsync("Runtime.enable");
        await browser.SendAsync("Log.enable");
        await browser.SendAsync("Page.enable");
        return (browser, null);
    }

    /// <summary>Loads <paramref name="file"/> and waits for its load event and a moment more for late errors.</summary>
    public async Task LoadAsync(string file)
    {
        Task<JsonObject> loaded = Await("Page.loadEventFired");
        await SendAsync("Page.navigate", new JsonObject { ["url"] = new Uri(Path.GetFullPath(file)).AbsoluteUri });
        await loaded.WaitAsync(Timeout);
        await Task.Delay(300);
    }

    /// <summary>Evaluates <paramref name="expression"/> in the page and returns its value as JSON.</summary>
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        JsonObject reply = await SendAsync("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true });
        if (reply["exceptionDetails"] is { } exception)
        {
            throw new InvalidOperationException($"evaluating {expression} threw: {exception.ToJsonString()}");
        }

        return reply["result"]?["value"]?.DeepClone();
    }

    private async Task<JsonObject> SendAsync(string method, JsonObject? parameters = null)
    {
        var reply = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        int id;
        lock (_gate)
        {
            id = ++_nextId;
            _replies[id] = reply;
        }

        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? [] };
        await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
        JsonObject answer = await reply.Task.WaitAsync(Timeout);
        if (answer["error"] is { } error)
        {
            throw new InvalidOperationException($"{method}: {error.ToJsonString()}");
        }

        return answer["result"]?.AsObject() ?? [];
    }

    private Task<JsonObject> Await(string method)
    {
        var seen = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _awaited.Add((method, seen));
        }

        return seen.Task;
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[1 << 16];
        var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                WebSocketReceiveResult result = await _socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                message.Write(buffer, 0, result.Count);
                if (result.EndOfMessage)
                {
                    Dispatch(JsonNode.Parse(message.ToArray())!.AsObject());
                    message.SetLength(0);
                }
            }
        }
        catch (Exception error) when (error is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The browser went away: pending calls time out with their own message.
        }
    }

    private void Dispatch(JsonObject message)
    {
        lock (_gate)
        {
            if (message["id"]?.GetValue<int>() is { } id && _replies.Remove(id, out TaskCompletionSource<JsonObject>? reply))
            {
                reply.TrySetResult(message);
                return;
            }

            string method = message["method"]?.GetValue<string>() ?? "";
            JsonNode? parameters = message["params"];
            if (Error(method, parameters) is { } error)
            {
                _errors.Add(error);
            }

            foreach ((string awaited, TaskCompletionSource<JsonObject> seen) in _awaited.Where(a => a.Method == method).ToList())
            {
                seen.TrySetResult(message);
                _awaited.Remove((awaited, seen));
            }
        }
    }

    /// <summary>The console error a DevTools event reports, or null when it is none.</summary>
    private static string? Error(string method, JsonNode? parameters)
    {
        switch (method)
        {
            case "Runtime.consoleAPICalled":
                string? type = parameters?["type"]?.GetValue<string>();
                string? args = parameters?["args"]?.ToJsonString();
                return type is "error" or "assert" ? $"console.{type}: {args}" : null;
            case "Runtime.exceptionThrown":
                JsonNode? details = parameters?["exceptionDetails"];
                JsonNode? text = details?["exception"]?["description"] ?? details?["text"];
                return $"uncaught: {text}";
            case "Log.entryAdded":
                JsonNode? entry = parameters?["entry"];
                string? level = entry?["level"]?.GetValue<string>();
                return level == "error" ? $"log: {entry?["text"]} ({entry?["url"]})" : null;
            default:
                return null;
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        try
        {
            _socket.Abort();
        }
        finally
        {
            _socket.Dispose();
            Kill(_process);
            await _reader.ConfigureAwait(false);
            _process.Dispose();
            _profile.Dispose();
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // It had already exited.
        }
    }

    private static string Tail(StringBuilder text)
    {
        lock (text)
        {
            string all = text.ToString().Trim();
            return all.Length <= 600 ? all : all[^600..];
        }
    }

    [GeneratedRegex(@"DevTools listening on (ws://\S+)")]
    private static partial Regex DevToolsLine();
}
