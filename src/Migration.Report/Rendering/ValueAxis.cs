namespace MiniVmm.Migration.Report.Rendering;

/// <summary>A plot's vertical axis: 0 up to a round maximum at or above the largest value.</summary>
internal sealed class ValueAxis
{
    /// <summary>Creates an axis for values up to <paramref name="max"/>, drawn from <paramref name="bottom"/> up to <paramref name="top"/>.</summary>
    /// <param name="max">The largest value to show (at least 1 is used, so an all-zero series still has an axis).</param>
    /// <param name="bottom">The y of 0.</param>
    /// <param name="top">The y of the maximum.</param>
    /// <param name="format">How a tick's value is written.</param>
    /// <param name="binary">Whether ticks fall on powers of two (bytes).</param>
    public ValueAxis(double max, double bottom, double top, Func<double, string> format, bool binary)
    {
        double span = max > 0 && !double.IsNaN(max) ? max : 1;
        Step = binary ? NiceStep.ForBytes(span, 4) : NiceStep.For(span, 4);
        Max = Math.Ceiling(span / Step) * Step;
        Bottom = bottom;
        Top = top;
        Format = format;
    }

    /// <summary>The value at the top.</summary>
    public double Max { get; }

    /// <summary>The gap between ticks.</summary>
    public double Step { get; }

    /// <summary>The y of 0.</summary>
    public double Bottom { get; }

    /// <summary>The y of <see cref="Max"/>.</summary>
    public double Top { get; }

    /// <summary>How a tick's value is written.</summary>
    public Func<double, string> Format { get; }

    /// <summary>The y of <paramref name="value"/>, clamped to the axis.</summary>
    public double Y(double value) => Bottom - (Math.Clamp(value, 0, Max) / Max * (Bottom - Top));

    /// <summary>The tick values.</summary>
    public IEnumerable<double> Ticks()
    {
        for (double v = 0; v <= Max + (Step / 1000); v += Step)
        {
            yield return v;
        }
    }
}
