namespace MiniVmm.Migration.Ram;

/// <summary>A dirty-rate measurement: how many distinct pages were written during a window.</summary>
/// <param name="DirtiedPages">Distinct 4 KiB pages written during the window.</param>
/// <param name="Window">How long the measurement ran.</param>
public readonly record struct DirtyRate(long DirtiedPages, TimeSpan Window)
{
    /// <summary>Pages per second (0 for an empty window).</summary>
    public double PagesPerSecond => Window > TimeSpan.Zero ? DirtiedPages / Window.TotalSeconds : 0;

    /// <summary>MiB per second, as QMP <c>query-dirty-rate</c> reports <c>dirty-rate</c>.</summary>
    public double MebibytesPerSecond => PagesPerSecond * RamBlock.PageSize / (1024 * 1024);
}
