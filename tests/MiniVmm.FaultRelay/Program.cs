using System.Net.Sockets;
using MiniVmm.FaultRelay;

// A TCP relay that injects faults between a migration's source and destination: started as a
// real process (in the destination's network namespace by the fault tests), it prints
// "listening IP:PORT" once ready, then takes faults on stdin, one a line (pass, delay:MS,
// throttle:BPS, stall, blackhole, cut, stall-after:N, cut-after:N), which apply to every open and later connection.
RelaySettings settings;
try
{
    settings = RelaySettings.Parse(args);
}
catch (Exception error) when (error is ArgumentException or FormatException)
{
    Console.Error.WriteLine($"minivmm-fault-relay: {error.Message}");
    return 2;
}

var gate = new Lock();
var connections = new List<RelayConnection>();
RelaySettings Current()
{
    lock (gate)
    {
        return settings;
    }
}

using var listener = new Socket(settings.Listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
listener.Bind(settings.Listen);
listener.Listen(16);
Console.WriteLine($"listening {listener.LocalEndPoint}");

_ = Task.Run(() =>
{
    while (Console.ReadLine() is { } line)
    {
        if (line.Trim().Length == 0)
        {
            continue;
        }

        try
        {
            RelaySettings next;
            lock (gate)
            {
                next = settings = RelaySettings.ParseFault(settings, line);
            }

            if (next.Fault == RelayFault.Cut)
            {
                lock (gate)
                {
                    connections.ForEach(c => c.Close(reset: true));
                }
            }

            Console.WriteLine($"fault {next.Fault}");
        }
        catch (Exception error) when (error is ArgumentException or FormatException)
        {
            Console.WriteLine($"error {error.Message}");
        }
    }
});

while (true)
{
    Socket source = await listener.AcceptAsync();
    Socket? destination = null;
    if (settings.Connect is { } target)
    {
        destination = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await destination.ConnectAsync(target);
        }
        catch (SocketException error)
        {
            Console.WriteLine($"connect {target} failed: {error.SocketErrorCode}");
            source.Dispose();
            destination.Dispose();
            continue;
        }
    }

    var connection = new RelayConnection(source, destination, Current);
    lock (gate)
    {
        connections.Add(connection);
    }

    Console.WriteLine($"accepted {source.RemoteEndPoint}");
    _ = connection.RunAsync().ContinueWith(
        _ =>
        {
            lock (gate)
            {
                connections.Remove(connection);
            }
        },
        TaskScheduler.Default);
}
