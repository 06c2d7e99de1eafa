namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// A real <c>dirty-guest</c> process (the Rust reference harness's example guest) connected to
/// a <c>minivmm run -guest harness,socket=PATH</c>; killed when disposed.
/// </summary>
public sealed class HarnessProcess : VmChildProcess
{
    private HarnessProcess(string program, IEnumerable<string> arguments)
        : base(program, arguments, Path.GetFileName(program), TimeSpan.FromSeconds(20))
    {
    }

    /// <summary>Starts the guest on <paramref name="socket"/> with optional extra arguments (e.g. <c>--rate N</c>).</summary>
    public static HarnessProcess Start(string socket, params string[] extra) =>
        new(GuestHarnessBinary.DirtyGuest, ["--socket", socket, .. extra]);

    /// <summary>Starts any harness program with the socket as its only argument.</summary>
    public static HarnessProcess StartProgram(string program, string socket) => new(program, [socket]);

    /// <summary>Starts one of the crate's examples (e.g. <c>first_harness</c>) with the socket as its argument.</summary>
    public static HarnessProcess StartExample(string example, string socket) =>
        new(GuestHarnessBinary.Example(example), [socket]);
}
