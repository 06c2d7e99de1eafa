using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.Fuzz.Tests.Targets;

namespace MiniVmm.Fuzz.Tests;

/// <summary>
/// Every input the fuzzer ever failed on, kept under <c>Regressions/TARGET/NAME.bin</c> and fed
/// again to its target on every run: each must now be taken cleanly (accepted, or refused with
/// the target's typed error). Add a file here for every crash the fuzzer finds.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RegressionTests
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "Regressions");

    private string _sockets = null!;

    public static IEnumerable<TestCaseData> Inputs() =>
        Directory.EnumerateFiles(Root, "*.bin", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(path => new TestCaseData(Path.GetRelativePath(Root, path)).SetName($"Regression({Path.GetRelativePath(Root, path)})"));

    [OneTimeSetUp]
    public void SetUp() => _sockets = Directory.CreateTempSubdirectory("minivmm-fuzz-").FullName;

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_sockets, recursive: true);

    [Test]
    public void There_are_regression_inputs_for_each_fixed_target()
    {
        string[] targets = [.. Directory.EnumerateDirectories(Root).Select(Path.GetFileName).Order()!];
        Assert.That(targets, Is.SupersetOf(new[] { "analyzer", "harness-channel", "loader", "qmp" }));
    }

    [TestCaseSource(nameof(Inputs))]
    public void Regression(string file)
    {
        string target = file.Split(Path.DirectorySeparatorChar)[0];
        byte[] input = File.ReadAllBytes(Path.Combine(Root, file));
        using IFuzzTarget fuzzTarget = Create(target);
        using var worker = new CaseWorker($"regression {file}");

        bool finished = worker.TryRun(() => fuzzTarget.Run(input), fuzzTarget.CaseTimeout, out CaseOutcome outcome, out Exception? error, out long allocated);

        Assert.That(finished, Is.True, $"{file} hung");
        Assert.That(error, Is.Null, () => $"{file}: {(error is FuzzFinding ? error.Message : ErrorRules.Describe(error!))}");
        Assert.That(allocated, Is.LessThanOrEqualTo(FuzzRunner.AllocationAllowance + FuzzRunner.AllocationPerInputByte * input.Length));
        TestContext.Out.WriteLine($"{file}: {outcome} {fuzzTarget.LastRejection}");
    }

    private IFuzzTarget Create(string target) => target switch
    {
        "loader" => new LoaderTarget([], _sockets),
        "analyzer" => new AnalyzerTarget([]),
        "return-path" => new ReturnPathTarget([]),
        "qmp" => new QmpTarget(_sockets),
        "harness-channel" => new HarnessChannelTarget(),
        "harness-payloads" => new HarnessPayloadsTarget(),
        _ => throw new ArgumentException($"Regressions/{target}: no such fuzz target"),
    };
}
