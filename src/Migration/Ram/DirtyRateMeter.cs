namespace MiniVmm.Migration.Ram;

/// <summary>
/// Measures how fast the guest dirties memory (for QMP <c>calc-dirty-rate</c> /
/// <c>query-dirty-rate</c>): <see cref="Start"/> turns dirty logging on and sets the marks aside,
/// <see cref="DirtyRateMeasurement.Finish"/> counts the pages marked since and puts every mark
/// back, so a migration's later sync still sees them all. A migration that syncs during the
/// window takes marks away from the count (the measurement is then low, nothing is lost).
/// </summary>
public sealed class DirtyRateMeter
{
    private readonly GuestMemory _memory;
    private readonly TimeProvider _time;

    /// <summary>Creates a meter for <paramref name="memory"/>, timed by <paramref name="time"/>.</summary>
    public DirtyRateMeter(GuestMemory memory, TimeProvider time)
    {
        _memory = memory;
        _time = time;
    }

    /// <summary>Starts a measurement window. Any thread.</summary>
    public DirtyRateMeasurement Start() => new(_memory, _time);

    /// <summary>Measures over <paramref name="window"/> (waiting on the meter's time provider).</summary>
    public async Task<DirtyRate> MeasureAsync(TimeSpan window, CancellationToken cancellationToken = default)
    {
        using DirtyRateMeasurement measurement = Start();
        await Task.Delay(window, _time, cancellationToken).ConfigureAwait(false);
        return measurement.Finish();
    }
}
