using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.RegularExpressions;
using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// The "Your first harness" walk-through of <c>docs/guest-harness.md</c>: its code is taken from
/// the page, built as a crate of its own that depends on <c>harness/</c> (offline), and run
/// against a real <c>minivmm run</c>.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed partial class FirstHarnessDocTests : VmFixture
{
    [Test]
    public async Task The_first_harness_from_the_docs_builds_runs_and_saves_its_counter()
    {
        string crate = GuestHarnessBinary.CrateDirectory;
        string page = await File.ReadAllTextAsync(Path.Combine(crate, "..", "docs", "guest-harness.md"));
        string code = FirstHarnessBlock().Match(page[page.IndexOf("## Your first harness", StringComparison.Ordinal)..]).Groups[1].Value;
        Assert.That(code.Split('\n'), Has.Length.LessThanOrEqualTo(30), "the walk-through promises at most 30 lines");
        Assert.That(code.TrimEnd(), Is.EqualTo((await File.ReadAllTextAsync(Path.Combine(crate, "examples", "first_harness.rs"))).TrimEnd()),
            "the page and examples/first_harness.rs differ");

        string project = Temp.File("first-harness");
        Directory.CreateDirectory(Path.Combine(project, "src"));
        await File.WriteAllTextAsync(Path.Combine(project, "src", "main.rs"), code);
        await File.WriteAllTextAsync(Path.Combine(project, "Cargo.toml"),
            $"[package]\nname = \"first-harness\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n" +
            $"[dependencies]\nminivmm-harness = {{ path = \"{crate}\" }}\n");
        await CargoBuildAsync(project);

        string socket = Temp.File("vm.harness");
        HarnessProcess? harness = null;
        Vm vm = await StartAsync("vm", ["-M", "none", "-m", "64M", "-guest", $"harness,socket={socket}"], _ =>
        {
            harness = HarnessProcess.StartProgram(Path.Combine(project, "target", "release", "first-harness"), socket);
            return Task.CompletedTask;
        });
        await using (harness)
        {
            await vm.WaitForRunStateAsync("running");
            await Task.Delay(100);
            await vm.ReturnOfAsync("stop");
            byte[] page256 = await vm.ReadRamAsync(1 << 20, 8, Temp.File("page.img"));
            byte[] state = Convert.FromBase64String(
                (await vm.ReturnOfAsync("x-query-guest-harness", new() { ["state"] = true }))!["state"]!.GetValue<string>());

            ulong counter = BinaryPrimitives.ReadUInt64LittleEndian(page256);
            Assert.Multiple(() =>
            {
                Assert.That(counter, Is.GreaterThan(0UL), "the guest never stepped");
                Assert.That(state, Is.EqualTo(page256), "the saved state is not the counter in RAM");
            });
            await vm.QuitAsync();
            Assert.That(await harness!.WaitForExitAsync(), Is.EqualTo(0), harness.Stderr);
        }
    }

    private static async Task CargoBuildAsync(string project)
    {
        using Process cargo = Process.Start(new ProcessStartInfo("cargo")
        {
            ArgumentList = { "build", "--offline", "--release", "--quiet", "--manifest-path", Path.Combine(project, "Cargo.toml") },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        string errors = await cargo.StandardError.ReadToEndAsync();
        await cargo.WaitForExitAsync();
        Assert.That(cargo.ExitCode, Is.Zero, $"the walk-through does not build:\n{errors}");
    }

    [GeneratedRegex("```rust\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FirstHarnessBlock();
}
