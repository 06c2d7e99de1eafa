using System.CommandLine;
using MiniVmm.Host.Demo;

namespace MiniVmm.Host.CommandLine;

/// <summary><c>minivmm demo</c>: the end-to-end live migration demonstration.</summary>
public sealed class DemoCommand : Command
{
    private readonly Option<string> _ram = new("--ram") { Description = "guest RAM of both VMs", DefaultValueFactory = _ => "1G" };
    private readonly Option<long> _rate = new("--guest-rate") { Description = "pages per second the guest dirties (0 = full speed)", DefaultValueFactory = _ => 50_000 };
    private readonly Option<long> _bandwidth = new("--max-bandwidth") { Description = "bytes per second (0 = unlimited)", DefaultValueFactory = _ => 0 };
    private readonly Option<DemoGuest> _guest = new("--guest") { Description = "dirty: the built-in guest; harness: the Rust reference harness in its own process (built with cargo if needed)", DefaultValueFactory = _ => DemoGuest.Dirty };
    private readonly Option<bool> _autoConverge = new("--auto-converge") { Description = "turn on the auto-converge capability: throttle the guest's vCPU when it dirties memory faster than the link carries" };
    private readonly Option<string?> _report = new("--report") { Description = "write a migration report (one HTML file with plots; its data as .json beside it)" };
    private readonly Option<string?> _harnessBinary = new("--harness-binary") { Description = "the harness binary for --guest harness (default: the checkout's harness/target/release/dirty-guest)" };

    /// <summary>Declares the command.</summary>
    public DemoCommand()
        : base("demo", "Migrate a running VM with a dirtying guest live to a second process over TCP and check its memory")
    {
        Options.Add(_ram);
        Options.Add(_rate);
        Options.Add(_bandwidth);
        Options.Add(_guest);
        Options.Add(_harnessBinary);
        Options.Add(_autoConverge);
        Options.Add(_report);
        SetAction((parseResult, cancellation) => new LiveMigrationDemo(new DemoSettings(
            parseResult.GetValue(_ram) ?? "1G", parseResult.GetValue(_rate), parseResult.GetValue(_bandwidth),
            Guest: parseResult.GetValue(_guest), HarnessBinary: parseResult.GetValue(_harnessBinary),
            AutoConverge: parseResult.GetValue(_autoConverge), ReportPath: parseResult.GetValue(_report))).RunAsync(cancellation));
    }
}
