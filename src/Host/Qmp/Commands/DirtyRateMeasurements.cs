using System.Text.Json.Nodes;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary>
/// The state behind <c>calc-dirty-rate</c> and <c>query-dirty-rate</c>: one measurement at a
/// time, reported with QEMU's field names (dirty rate in MiB/s, times in seconds).
/// </summary>
public sealed class DirtyRateMeasurements(TimeProvider time, GuestMemory? memory = null)
{
    private readonly object _gate = new();
    private string _status = "unstarted";
    private long _startTime;
    private long _calcTime;
    private long _samplePages = 512;
    private long? _rate;
    private Task? _running;

    /// <summary>Starts a measurement of <paramref name="seconds"/> (QEMU allows 1..60).</summary>
    public void Start(long seconds, long samplePages)
    {
        if (memory is null)
        {
            throw new QmpException("the machine has no RAM (start it with -m SIZE)");
        }

        if (seconds is < 1 or > 60)
        {
            throw new QmpException("Parameter 'calc-time' expects an integer in the range of 1 to 60");
        }

        lock (_gate)
        {
            if (_status == "measuring")
            {
                throw new QmpException("Dirty rate is already being measured");
            }

            _status = "measuring";
            _startTime = time.GetUtcNow().ToUnixTimeSeconds();
            _calcTime = seconds;
            _samplePages = samplePages;
            _rate = null;
            _running = MeasureAsync(new DirtyRateMeter(memory, time), TimeSpan.FromSeconds(seconds));
        }
    }

    /// <summary>The <c>query-dirty-rate</c> reply.</summary>
    public JsonObject Query()
    {
        lock (_gate)
        {
            var json = new JsonObject { ["status"] = _status };
            if (_rate is { } rate)
            {
                json["dirty-rate"] = rate;
            }

            json["start-time"] = _startTime;
            json["calc-time"] = _calcTime;
            json["sample-pages"] = _samplePages;
            json["mode"] = "page-sampling";
            return json;
        }
    }

    private async Task MeasureAsync(DirtyRateMeter meter, TimeSpan window)
    {
        await Task.Yield();
        DirtyRate rate = await meter.MeasureAsync(window).ConfigureAwait(false);
        lock (_gate)
        {
            _rate = (long)Math.Round(rate.MebibytesPerSecond);
            _status = "measured";
        }
    }
}
