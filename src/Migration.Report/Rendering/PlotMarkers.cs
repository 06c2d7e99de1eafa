namespace MiniVmm.Migration.Report.Rendering;

/// <summary>What every time plot marks: the switchover, the downtime, and where passes began.</summary>
/// <param name="SwitchoverMs">When the source decided to switch over; null if it never did.</param>
/// <param name="DowntimeStartMs">When the VM stopped for the switchover; null if it did not.</param>
/// <param name="DowntimeEndMs">When the switchover ended (the migration completed or failed).</param>
/// <param name="PassStartsMs">When each pass began (drawn only when few enough to read).</param>
internal sealed record PlotMarkers(long? SwitchoverMs, long? DowntimeStartMs, long? DowntimeEndMs, IReadOnlyList<long> PassStartsMs)
{
    /// <summary>Pass boundaries are drawn up to this many; past it they would be a grey wash.</summary>
    public const int MaxPassLines = 60;
}
