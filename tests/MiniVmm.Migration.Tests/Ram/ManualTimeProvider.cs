namespace MiniVmm.Migration.Tests.Ram;

/// <summary>A clock that moves only when told to, so time budgets never cut a test's sections short.</summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private long _ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>How far the clock moves after each <see cref="GetTimestamp"/> (zero: it never moves by itself).</summary>
    public TimeSpan AutoAdvance { get; set; }

    public override long GetTimestamp()
    {
        long step = AutoAdvance.Ticks;
        return Interlocked.Add(ref _ticks, step) - step;
    }

    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(Interlocked.Read(ref _ticks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
