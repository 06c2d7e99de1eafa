namespace MiniVmm.Migration.Report.Rendering;

/// <summary>The colours of the report's series, the same in every plot.</summary>
internal static class SeriesColors
{
    public const string Pending = "#1f6fb4";
    public const string Threshold = "#d62728";
    public const string DirtyRate = "#9467bd";
    public const string Bandwidth = "#17a2b8";
    public const string Ram = "#1f6fb4";
    public const string Vfio = "#ff7f0e";
    public const string Harness = "#2ca02c";
    public const string Other = "#8c8c8c";
    public const string Throttle = "#8c564b";
}
