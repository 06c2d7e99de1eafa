using System.CommandLine;
using MiniVmm.Migration.Analysis;

namespace MiniVmm.Host.CommandLine;

/// <summary>
/// <c>minivmm analyze FILE [--dump state|desc]</c>: walks a QEMU-format migration stream, as
/// QEMU's scripts/analyze-migration.py does, and prints JSON; on a bad stream it prints what it
/// parsed, then the error with its byte offset, and exits non-zero.
/// </summary>
public sealed class AnalyzeStreamCommand : Command
{
    private readonly Argument<string> _file = new("FILE") { Description = "the migration stream (a file written by migrate file: or exec:cat > FILE)" };
    private readonly Option<string> _dump = new("--dump", "-d")
    {
        Description = "what to print: 'state' (sections and their contents) or 'desc' (the vmdesc JSON)",
        DefaultValueFactory = _ => "state",
    };

    /// <summary>The readers of the device sections MiniVmm itself writes: VFIO and the guest harness state.</summary>
    private static readonly IReadOnlyList<IStreamSectionDecoder> Decoders =
        [new MiniVmm.Vfio.Migration.VfioSectionDecoder(), new MiniVmm.GuestHarness.HarnessStateDecoder(),
         new MiniVmm.Migration.Savevm.ChunkedSectionDecoder(MiniVmm.Devices.Samples.LiveScratchDevice.SectionName)];

    /// <summary>Declares the command.</summary>
    public AnalyzeStreamCommand()
        : base("analyze", "Analyze a QEMU migration stream and print it as JSON")
    {
        Arguments.Add(_file);
        _dump.AcceptOnlyFromAmong("state", "desc");
        Options.Add(_dump);
        SetAction(parseResult =>
        {
            AnalysisDumpMode mode = parseResult.GetValue(_dump) == "desc" ? AnalysisDumpMode.Desc : AnalysisDumpMode.State;
            TextWriter output = parseResult.InvocationConfiguration.Output;
            int exit = AnalyzeCommand.Run(parseResult.GetValue(_file)!, mode, output, Decoders);
            output.Flush();
            return exit;
        });
    }
}
