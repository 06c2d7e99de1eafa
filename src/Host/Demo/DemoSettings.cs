namespace MiniVmm.Host.Demo;

/// <summary>What the demo migrates and how.</summary>
/// <param name="RamSize">Guest RAM of both VMs, in <c>-m</c> syntax.</param>
/// <param name="GuestPagesPerSecond">The dirtying guest's rate (0 = as fast as it can).</param>
/// <param name="MaxBandwidth">The source's max-bandwidth in bytes per second (0 = unlimited).</param>
/// <param name="DowntimeLimitMs">The source's downtime-limit.</param>
/// <param name="Guest">Which guest writes RAM: <see cref="DemoGuest.Dirty"/> (built in) or <see cref="DemoGuest.Harness"/> (the Rust reference harness in its own process).</param>
/// <param name="HarnessBinary">The harness binary for <see cref="DemoGuest.Harness"/>; null finds (and builds) the checkout's.</param>
/// <param name="AutoConverge">Whether the source turns on the <c>auto-converge</c> capability (throttles the guest's vCPU when it outruns the link).</param>
/// <param name="ReportPath">Where to write the migration report (HTML; its JSON goes beside it); null for none.</param>
public sealed record DemoSettings(
    string RamSize = "1G", long GuestPagesPerSecond = 50_000, long MaxBandwidth = 0, long DowntimeLimitMs = 300,
    DemoGuest Guest = DemoGuest.Dirty, string? HarnessBinary = null, bool AutoConverge = false, string? ReportPath = null);

/// <summary>The guest the demo migrates.</summary>
public enum DemoGuest
{
    /// <summary><c>-guest dirty</c>: MiniVmm's built-in dirtying guest.</summary>
    Dirty,

    /// <summary><c>-guest harness</c>: the Rust reference harness's <c>dirty-guest</c>, one process per VM.</summary>
    Harness,
}
