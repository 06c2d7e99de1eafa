namespace MiniVmm.Migration.Report.Rendering;

/// <summary>The horizontal axis every time plot of a report shares: 0 to the migration's end, in milliseconds.</summary>
internal sealed class TimeAxis
{
    /// <summary>Creates the axis for <paramref name="endMs"/> milliseconds drawn between <paramref name="left"/> and <paramref name="right"/>.</summary>
    public TimeAxis(long endMs, double left, double right)
    {
        EndMs = Math.Max(1, endMs);
        Left = left;
        Right = right;
        StepMs = NiceStep.For(EndMs, targetTicks: 8);
    }

    /// <summary>The last millisecond shown.</summary>
    public long EndMs { get; }

    /// <summary>The x of time zero.</summary>
    public double Left { get; }

    /// <summary>The x of <see cref="EndMs"/>.</summary>
    public double Right { get; }

    /// <summary>The gap between ticks, in ms.</summary>
    public double StepMs { get; }

    /// <summary>The x of <paramref name="ms"/>, clamped to the axis.</summary>
    public double X(double ms) => Left + (Math.Clamp(ms, 0, EndMs) / EndMs * (Right - Left));

    /// <summary>The tick times.</summary>
    public IEnumerable<double> Ticks()
    {
        for (double t = 0; t <= EndMs + (StepMs / 1000); t += StepMs)
        {
            yield return t;
        }
    }
}
