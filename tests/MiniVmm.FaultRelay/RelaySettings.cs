using System.Globalization;
using System.Net;

namespace MiniVmm.FaultRelay;

/// <summary>
/// The relay's command line: <c>--listen IP:PORT [--connect IP:PORT] [--fault pass|delay:MS|throttle:BPS|stall|blackhole|cut]
/// [--stall-after N] [--cut-after N]</c>. Without <c>--connect</c> the relay is a sink that reads
/// and drops (for failing migrations in a row).
/// </summary>
public sealed record RelaySettings(
    IPEndPoint Listen,
    IPEndPoint? Connect,
    RelayFault Fault,
    int DelayMilliseconds,
    long BytesPerSecond,
    long StallAfter,
    long CutAfter)
{
    /// <summary>Reads the arguments; throws <see cref="ArgumentException"/> with a one-line reason.</summary>
    public static RelaySettings Parse(string[] arguments)
    {
        IPEndPoint? listen = null;
        IPEndPoint? connect = null;
        var settings = new RelaySettings(new IPEndPoint(IPAddress.Loopback, 0), null, RelayFault.Pass, 0, 0, -1, -1);
        for (int i = 0; i < arguments.Length; i++)
        {
            string value = i + 1 < arguments.Length ? arguments[i + 1] : throw new ArgumentException($"{arguments[i]} needs a value");
            switch (arguments[i])
            {
                case "--listen":
                    listen = IPEndPoint.Parse(value);
                    break;
                case "--connect":
                    connect = IPEndPoint.Parse(value);
                    break;
                case "--fault":
                    settings = ParseFault(settings, value);
                    break;
                case "--stall-after":
                    settings = settings with { StallAfter = long.Parse(value, CultureInfo.InvariantCulture) };
                    break;
                case "--cut-after":
                    settings = settings with { CutAfter = long.Parse(value, CultureInfo.InvariantCulture) };
                    break;
                default:
                    throw new ArgumentException($"unknown option {arguments[i]}");
            }

            i++;
        }

        return settings with { Listen = listen ?? throw new ArgumentException("--listen IP:PORT is required"), Connect = connect };
    }

    /// <summary>Applies one fault spelled as on the command line or on stdin (<c>stall</c>, <c>delay:200</c>, ...).</summary>
    public static RelaySettings ParseFault(RelaySettings settings, string text)
    {
        string[] parts = text.Trim().Split(':', 2);
        long Number() => parts.Length == 2
            ? long.Parse(parts[1], CultureInfo.InvariantCulture)
            : throw new ArgumentException($"fault '{text}' needs a number after ':'");
        return parts[0] switch
        {
            "pass" => settings with { Fault = RelayFault.Pass },
            "delay" => settings with { Fault = RelayFault.Delay, DelayMilliseconds = (int)Number() },
            "throttle" => settings with { Fault = RelayFault.Throttle, BytesPerSecond = Math.Max(1, Number()) },
            "stall" => settings with { Fault = RelayFault.Stall },
            "blackhole" => settings with { Fault = RelayFault.Blackhole },
            "cut" => settings with { Fault = RelayFault.Cut },
            "stall-after" => settings with { StallAfter = Number() },
            "cut-after" => settings with { CutAfter = Number() },
            _ => throw new ArgumentException($"unknown fault '{text}' (pass, delay:MS, throttle:BPS, stall, blackhole, cut, stall-after:N, cut-after:N)"),
        };
    }
}
