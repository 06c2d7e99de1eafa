namespace MiniVmm.Migration.Report.Rendering;

/// <summary>Tick spacing a reader can add up in their head: 1, 2 or 5 times a power of ten.</summary>
internal static class NiceStep
{
    /// <summary>A step that splits 0..<paramref name="span"/> into about <paramref name="targetTicks"/> ticks.</summary>
    public static double For(double span, int targetTicks)
    {
        if (span <= 0 || double.IsNaN(span) || double.IsInfinity(span))
        {
            return 1;
        }

        double raw = span / targetTicks;
        double power = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double fraction = raw / power;
        double nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
        return nice * power;
    }

    /// <summary>A step in bytes that falls on binary units (1, 2, 4 ... 512 times KiB, MiB, GiB) for about <paramref name="targetTicks"/> ticks.</summary>
    public static double ForBytes(double span, int targetTicks)
    {
        if (span <= 0 || double.IsNaN(span) || double.IsInfinity(span))
        {
            return 1;
        }

        double raw = span / targetTicks;
        double step = 1;
        while (step < raw)
        {
            step *= 2;
        }

        return step;
    }
}
