using System.Diagnostics;

namespace MiniVmm.Host.Demo;

/// <summary>
/// Finds the reference harness's <c>dirty-guest</c> binary for <c>minivmm demo --guest harness</c>:
/// the given path, or <c>harness/target/release/dirty-guest</c> in the checkout this program was
/// built in, built first with <c>cargo build --offline --release</c> when it is missing or older
/// than the crate's sources. The tests find the harness and its examples here too.
/// </summary>
public static class HarnessBinary
{
    /// <summary>The binary to run.</summary>
    /// <exception cref="IOException">No binary, and none could be built.</exception>
    public static string Locate(string? given)
    {
        if (given is not null)
        {
            return File.Exists(given) ? Path.GetFullPath(given) : throw new IOException($"--harness-binary {given}: no such file");
        }

        string crate = CrateDirectory ?? throw new IOException(
            "no harness/Cargo.toml above this program: build the reference harness and pass --harness-binary PATH");
        string binary = Path.Combine(crate, "target", "release", "dirty-guest");
        if (!File.Exists(binary) || IsStale(crate, binary))
        {
            Build(crate);
        }

        return File.Exists(binary) ? binary : throw new IOException($"cargo built no {binary}");
    }

    /// <summary>The checkout's <c>harness/</c> crate above this program, or null outside a checkout.</summary>
    public static string? CrateDirectory => FindCrate();

    /// <summary>The path of the crate's built example <paramref name="name"/>; builds the crate (binaries and examples) first when needed.</summary>
    /// <exception cref="IOException">Outside a checkout, or cargo built no such example.</exception>
    public static string Example(string name)
    {
        _ = Locate(null);
        string binary = Path.Combine(CrateDirectory!, "target", "release", "examples", name);
        return File.Exists(binary) ? binary : throw new IOException($"cargo built no example '{name}' ({binary})");
    }

    private static string? FindCrate()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "harness");
            if (File.Exists(Path.Combine(candidate, "Cargo.toml")))
            {
                return candidate;
            }
        }

        return null;
    }

    private static bool IsStale(string crate, string binary)
    {
        DateTime built = File.GetLastWriteTimeUtc(binary);
        return Directory.EnumerateFiles(Path.Combine(crate, "src"), "*.rs", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(Path.Combine(crate, "examples"), "*.rs"))
            .Append(Path.Combine(crate, "Cargo.toml"))
            .Any(source => File.GetLastWriteTimeUtc(source) > built);
    }

    private static void Build(string crate)
    {
        var start = new ProcessStartInfo("cargo")
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            ArgumentList = { "build", "--offline", "--release", "--quiet", "--bins", "--examples", "--manifest-path", Path.Combine(crate, "Cargo.toml") },
        };
        try
        {
            using Process cargo = Process.Start(start) ?? throw new IOException("cargo did not start");
            string errors = cargo.StandardError.ReadToEnd();
            cargo.WaitForExit();
            if (cargo.ExitCode != 0)
            {
                throw new IOException($"cargo build of the guest harness failed: {errors.Trim()}");
            }
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            throw new IOException($"cargo is needed to build the guest harness ({error.Message}); install Debian's cargo", error);
        }
    }
}
