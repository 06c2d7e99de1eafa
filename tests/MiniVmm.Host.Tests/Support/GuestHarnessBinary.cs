using MiniVmm.Host.Demo;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// The Rust reference harness for the tests, found (and built once when missing or stale, with
/// <c>cargo build --offline --release</c>) by the same <see cref="HarnessBinary"/> the demo uses;
/// test.sh builds it first, so the build is a no-op there.
/// </summary>
public static class GuestHarnessBinary
{
    private static readonly Lazy<string> Built = new(() => HarnessBinary.Locate(null), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The checkout's <c>harness/</c> folder.</summary>
    public static string CrateDirectory { get; } = HarnessBinary.CrateDirectory
        ?? throw new DirectoryNotFoundException($"no harness/Cargo.toml above {AppContext.BaseDirectory}");

    /// <summary>The path of the built <c>dirty-guest</c> binary.</summary>
    public static string DirtyGuest => Built.Value;

    /// <summary>The path of the built example <paramref name="name"/> (<c>target/release/examples/NAME</c>).</summary>
    public static string Example(string name)
    {
        _ = Built.Value;
        return HarnessBinary.Example(name);
    }
}
