using System.CommandLine;

namespace MiniVmm.Host.CommandLine;

/// <summary>
/// The <c>minivmm</c> command line: <c>run</c>, <c>demo</c>, <c>analyze</c> and <c>report</c>. Parse errors (an unknown option,
/// a missing value) go to stderr, naming what was wrong, with exit code 1.
/// </summary>
public sealed class MiniVmmCommandLine
{
    private readonly RootCommand _root;

    /// <summary>Builds the commands.</summary>
    public MiniVmmCommandLine()
    {
        _root = new RootCommand("MiniVmm: a userspace VMM with QEMU 7.2's migration framework, driven like QEMU")
        {
            new RunCommand(),
            new DemoCommand(),
            new AnalyzeStreamCommand(),
            new ReportCommand(),
        };
    }

    /// <summary>How the arguments are tokenized: no <c>@file</c> expansion, no bundling of one-letter options (QEMU has neither).</summary>
    public static ParserConfiguration ParserConfiguration => new()
    {
        EnablePosixBundling = false,
        ResponseFileTokenReplacer = null,
    };

    /// <summary>Parses <paramref name="args"/> and runs the chosen command; returns the exit code.</summary>
    public async Task<int> InvokeAsync(IReadOnlyList<string> args, TextWriter? output = null, TextWriter? error = null)
    {
        var invocation = new InvocationConfiguration
        {
            Output = output ?? Console.Out,
            Error = error ?? Console.Error,
            ProcessTerminationTimeout = null,
            EnableDefaultExceptionHandler = true,
        };
        ParseResult parseResult = _root.Parse(args, ParserConfiguration);
        if (parseResult.Errors.Count > 0)
        {
            foreach (System.CommandLine.Parsing.ParseError parseError in parseResult.Errors)
            {
                await invocation.Error.WriteLineAsync($"minivmm: {parseError.Message}").ConfigureAwait(false);
            }

            await invocation.Error.WriteLineAsync("Try 'minivmm --help' for more information.").ConfigureAwait(false);
            return 1;
        }

        return await parseResult.InvokeAsync(invocation).ConfigureAwait(false);
    }
}
