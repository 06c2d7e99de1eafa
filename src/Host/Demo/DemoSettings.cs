namespace MiniVmm.Host.Demo;

/// <summary>What the demo migrates and how.</summary>
/// <param name="RamSize">Guest RAM of both VMs, in <c>-m</c> syntax.</param>
/// <param name="GuestPagesPerSecond">The dirtying guest's rate (0 = as fast as it can).</param>
/// <param name="MaxBandwidth">The source's max-bandwidth in bytes per second (0 = unlimited).</param>
/// <param name="DowntimeLimitMs">The source's downtime-limit.</param>
public sealed record DemoSettings(string RamSize = "1G", long GuestPagesPerSecond = 50_000, long MaxBandwidth = 0, long DowntimeLimitMs = 300);
