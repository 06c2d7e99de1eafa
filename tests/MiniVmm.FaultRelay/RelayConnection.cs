using System.Diagnostics;
using System.Net.Sockets;

namespace MiniVmm.FaultRelay;

/// <summary>
/// One relayed connection: a pump from the source to the destination that applies the current
/// fault, and a plain pump back (the return path). Bytes counted from the source side.
/// </summary>
public sealed class RelayConnection
{
    private const int ChunkBytes = 64 * 1024;

    private readonly Socket _source;
    private readonly Socket? _destination;
    private readonly Func<RelaySettings> _settings;
    private long _forwarded;
    private int _closed;

    /// <summary>Relays between <paramref name="source"/> and <paramref name="destination"/> (null: a sink).</summary>
    public RelayConnection(Socket source, Socket? destination, Func<RelaySettings> settings)
    {
        _source = source;
        _destination = destination;
        _settings = settings;
    }

    /// <summary>Runs both pumps until either side ends.</summary>
    public async Task RunAsync()
    {
        Task forward = Task.Run(ForwardAsync);
        Task back = _destination is null ? forward : Task.Run(BackAsync);
        await Task.WhenAny(forward, back);
        if (_settings().Fault is not (RelayFault.Stall or RelayFault.Blackhole))
        {
            Close(reset: false);
        }

        await Task.WhenAll(forward, back).ContinueWith(_ => { }, TaskScheduler.Default);
        Close(reset: false);
    }

    /// <summary>Closes both sockets; with <paramref name="reset"/> the peers see a reset.</summary>
    public void Close(bool reset)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        foreach (Socket? socket in new[] { _source, _destination })
        {
            if (socket is null)
            {
                continue;
            }

            try
            {
                if (reset)
                {
                    socket.LingerState = new LingerOption(true, 0);
                }

                socket.Dispose();
            }
            catch (Exception error) when (error is SocketException or ObjectDisposedException)
            {
                // Already gone.
            }
        }
    }

    private async Task ForwardAsync()
    {
        byte[] buffer = new byte[ChunkBytes];
        var clock = Stopwatch.StartNew();
        long sentSinceStart = 0;
        try
        {
            while (true)
            {
                int read = await _source.ReceiveAsync(buffer, SocketFlags.None);
                if (read == 0)
                {
                    if (_destination is not null && _settings().Fault is not (RelayFault.Stall or RelayFault.Blackhole))
                    {
                        _destination.Shutdown(SocketShutdown.Send);
                    }

                    return;
                }

                RelaySettings settings = _settings();
                int forward = read;
                if (settings.CutAfter >= 0 && _forwarded + read >= settings.CutAfter)
                {
                    forward = (int)Math.Max(0, settings.CutAfter - _forwarded);
                    await SendAsync(buffer.AsMemory(0, forward));
                    Close(reset: true);
                    return;
                }

                if (settings.Fault == RelayFault.Cut)
                {
                    Close(reset: true);
                    return;
                }

                if (settings.Fault == RelayFault.Blackhole)
                {
                    continue; // read (so acked) and dropped
                }

                if (settings.StallAfter >= 0 && _forwarded + read > settings.StallAfter)
                {
                    // Forward up to byte N, then hold the rest and stop reading.
                    await SendAsync(buffer.AsMemory(0, (int)Math.Max(0, settings.StallAfter - _forwarded)));
                    await HoldWhileStalledAsync(always: true);
                    return;
                }

                if (settings.Fault == RelayFault.Stall)
                {
                    await HoldWhileStalledAsync(always: false);
                    settings = _settings();
                    if (Volatile.Read(ref _closed) != 0)
                    {
                        return;
                    }
                }

                if (settings.Fault == RelayFault.Delay)
                {
                    await Task.Delay(settings.DelayMilliseconds);
                }
                else if (settings.Fault == RelayFault.Throttle)
                {
                    sentSinceStart += forward;
                    long due = sentSinceStart * 1000 / settings.BytesPerSecond;
                    long ahead = due - clock.ElapsedMilliseconds;
                    if (ahead > 0)
                    {
                        await Task.Delay((int)Math.Min(ahead, int.MaxValue));
                    }
                }
                else
                {
                    clock.Restart();
                    sentSinceStart = 0;
                }

                await SendAsync(buffer.AsMemory(0, forward));
            }
        }
        catch (Exception error) when (error is SocketException or ObjectDisposedException)
        {
            // One side went away: RunAsync closes the other.
        }
    }

    /// <summary>Neither reads nor forwards while the fault is a stall (or for good), until the connection closes.</summary>
    private async Task HoldWhileStalledAsync(bool always)
    {
        while (Volatile.Read(ref _closed) == 0 && (always || _settings().Fault == RelayFault.Stall))
        {
            await Task.Delay(50);
        }
    }

    private async Task SendAsync(ReadOnlyMemory<byte> data)
    {
        if (_destination is not null && !data.IsEmpty)
        {
            await _destination.SendAsync(data, SocketFlags.None);
        }

        _forwarded += data.Length;
    }

    private async Task BackAsync()
    {
        byte[] buffer = new byte[ChunkBytes];
        try
        {
            while (true)
            {
                int read = await _destination!.ReceiveAsync(buffer, SocketFlags.None);
                if (read == 0)
                {
                    _source.Shutdown(SocketShutdown.Send);
                    return;
                }

                await _source.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
            }
        }
        catch (Exception error) when (error is SocketException or ObjectDisposedException)
        {
            // One side went away: RunAsync closes the other.
        }
    }
}
