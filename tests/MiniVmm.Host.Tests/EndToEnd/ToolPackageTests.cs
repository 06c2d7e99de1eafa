using System.Diagnostics;
using System.Reflection;
using System.Xml.Linq;
using MiniVmm.Host.CommandLine;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// <c>dotnet pack</c> makes <c>minivmm</c> a .NET tool: the package installs with
/// <c>dotnet tool install</c> from a local folder (offline: the tool carries every assembly it
/// needs) and the installed command answers <c>--version</c>.
/// </summary>
[TestFixture]
public sealed class ToolPackageTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    [Test]
    public void The_packed_tool_installs_into_a_tool_path_and_reports_its_version()
    {
        string root = RepositoryRoot();
        string project = Path.Combine(root, "src", "Host", "MiniVmm.Host.csproj");
        XDocument csproj = XDocument.Load(project);
        string packageId = Property(csproj, "PackageId");
        string version = Property(csproj, "Version");
        string configuration = typeof(ToolPackageTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration;
        string expectedVersion = typeof(MiniVmmCommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        using var temp = new TemporaryDirectory();
        string feed = temp.File("feed");
        string tools = temp.File("tools");

        // The build the other tests use is packed as it is (no rebuild under their feet).
        (int packed, string packOutput) = Run(
            "dotnet", ["pack", project, "-c", configuration, "--no-build", "-nologo", "-o", feed], temp.Path, temp.File("packages"));
        Assert.That(packed, Is.Zero, packOutput);
        string package = Path.Combine(feed, $"{packageId}.{version}.nupkg");
        Assert.That(File.Exists(package), Is.True, $"{package} was made: {string.Join(", ", Directory.GetFiles(feed))}");

        // The machine's configured feeds may be out of reach: the folder is all the tool needs.
        (int installed, string installOutput) = Run(
            "dotnet",
            ["tool", "install", "--tool-path", tools, "--add-source", feed, "--ignore-failed-sources", packageId, "--version", version],
            temp.Path, temp.File("packages"));
        Assert.That(installed, Is.Zero, installOutput);

        (int exit, string output) = Run(Path.Combine(tools, "minivmm"), ["--version"], temp.Path, temp.File("packages"));
        Assert.Multiple(() =>
        {
            Assert.That(packageId, Is.EqualTo("MiniVmm.Tool"));
            Assert.That(exit, Is.Zero, output);
            Assert.That(output.Trim(), Is.EqualTo(expectedVersion), "the installed minivmm is this build");
            Assert.That(output.Trim(), Does.StartWith(version), "and reports the package version");
        });
    }

    private static string Property(XDocument csproj, string name) =>
        csproj.Descendants(name).Select(e => e.Value.Trim()).SingleOrDefault(v => v.Length > 0)
        ?? throw new AssertionException($"src/Host/MiniVmm.Host.csproj sets no {name}");

    /// <summary>Runs a program to its end; returns its exit code and everything it printed.</summary>
    private static (int ExitCode, string Output) Run(string program, IEnumerable<string> arguments, string directory, string packages)
    {
        var start = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = directory,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // A package cache of its own: a package of the same version left in the user's cache by an
        // earlier build must not stand in for this one.
        start.Environment["NUGET_PACKAGES"] = packages;
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', arguments)} did not finish within {Timeout}");
        }

        process.WaitForExit();
        return (process.ExitCode, output.Result + error.Result);
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "MiniVmm.sln")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException($"no MiniVmm.sln above {AppContext.BaseDirectory}");
    }
}
