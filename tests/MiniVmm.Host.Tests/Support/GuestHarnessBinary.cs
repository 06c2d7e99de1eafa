using System.Diagnostics;

namespace MiniVmm.Host.Tests.Support;

/// <summary>
/// The Rust reference harness's example guest (<c>harness/target/release/dirty-guest</c>), built
/// once per test run with <c>cargo build --offline --release</c> (test.sh builds it first, so
/// this is a no-op there).
/// </summary>
public static class GuestHarnessBinary
{
    private static readonly Lazy<string> Built = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The checkout's <c>harness/</c> folder.</summary>
    public static string CrateDirectory { get; } = Locate();

    /// <summary>The path of the built <c>dirty-guest</c> binary.</summary>
    public static string DirtyGuest => Built.Value;

    /// <summary>The path of the built example <paramref name="name"/> (<c>target/release/examples/NAME</c>).</summary>
    public static string Example(string name)
    {
        _ = Built.Value;
        string binary = Path.Combine(CrateDirectory, "target", "release", "examples", name);
        return File.Exists(binary) ? binary : throw new FileNotFoundException($"cargo built no example '{name}'", binary);
    }

    private static string Locate()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "harness");
            if (File.Exists(Path.Combine(candidate, "Cargo.toml")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException($"no harness/Cargo.toml above {AppContext.BaseDirectory}");
    }

    private static string Build()
    {
        var start = new ProcessStartInfo("cargo")
        {
            ArgumentList = { "build", "--offline", "--release", "--quiet", "--bins", "--examples", "--manifest-path", Path.Combine(CrateDirectory, "Cargo.toml") },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using Process cargo = Process.Start(start) ?? throw new InvalidOperationException("cargo did not start");
        string errors = cargo.StandardError.ReadToEnd();
        cargo.WaitForExit();
        if (cargo.ExitCode != 0)
        {
            throw new InvalidOperationException($"cargo build of the guest harness failed ({cargo.ExitCode}):\n{errors}");
        }

        string binary = Path.Combine(CrateDirectory, "target", "release", "dirty-guest");
        return File.Exists(binary) ? binary : throw new FileNotFoundException("cargo built no dirty-guest binary", binary);
    }
}
