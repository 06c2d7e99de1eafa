using System.CommandLine;
using MiniVmm.Host.Demo;

namespace MiniVmm.Host.CommandLine;

/// <summary><c>minivmm demo</c>: the end-to-end demonstration.</summary>
public sealed class DemoCommand : Command
{
    /// <summary>Declares the command.</summary>
    public DemoCommand()
        : base("demo", "Run the demonstration: for now, a minivmm driven over QMP")
    {
        SetAction((parseResult, cancellation) =>
            new QmpDemo(parseResult.InvocationConfiguration.Output, TimeProvider.System).RunAsync(cancellation));
    }
}
