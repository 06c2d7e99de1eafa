using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.Fuzz.Tests.Seeds;
using MiniVmm.Fuzz.Tests.Targets;

namespace MiniVmm.Fuzz.Tests;

/// <summary>
/// The bounded fuzz run of <c>./test.sh</c>: every target, a fixed number of mutated cases
/// after its unmutated seeds (fewer for the targets that build a machine or a socketpair per
/// case, so that the whole run stays well under a minute while the other test projects run
/// beside it on two cores), with a run seed taken from the clock and printed, so that a
/// failure replays with <c>MINIVMM_FUZZ_SEED</c> (and <c>MINIVMM_FUZZ_CASE</c> for one case).
/// <c>bench/fuzz.sh</c> runs the same tests for a given time instead (<c>MINIVMM_FUZZ_SECONDS</c>).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class FuzzTests
{
    private FuzzSettings _settings = null!;
    private string _sockets = null!;
    private IReadOnlyList<FuzzSeed>? _streams;

    [OneTimeSetUp]
    public void SetUp()
    {
        _settings = FuzzSettings.FromEnvironment();
        _sockets = Directory.CreateTempSubdirectory("minivmm-fuzz-").FullName;
        TestContext.Out.WriteLine(
            $"fuzz run seed 0x{_settings.Seed:x} ({(_settings.SeedFromClock ? "from the clock" : $"from {FuzzSettings.SeedVariable}")}); " +
            $"replay with {FuzzSettings.SeedVariable}=0x{_settings.Seed:x}");
    }

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_sockets, recursive: true);

    private IReadOnlyList<FuzzSeed> Streams => _streams ??= StreamSeeds.Create(_sockets);

    [Test]
    public void Loader() => Fuzz(new LoaderTarget(Streams, _sockets), 800, nameof(Loader));

    [Test]
    public void Analyzer() => Fuzz(new AnalyzerTarget(StreamSeeds.Analyzable(Streams)), 2000, nameof(Analyzer));

    [Test]
    public void ReturnPath() => Fuzz(new ReturnPathTarget(ReturnPathTarget.CreateSeeds()), 3000, nameof(ReturnPath));

    [Test]
    public void Qmp() => Fuzz(new QmpTarget(_sockets), 3000, nameof(Qmp));

    [Test]
    public void HarnessChannel() => Fuzz(new HarnessChannelTarget(), 800, nameof(HarnessChannel));

    [Test]
    public void HarnessPayloads() => Fuzz(new HarnessPayloadsTarget(), 5000, nameof(HarnessPayloads));

    private void Fuzz(IFuzzTarget target, int boundedCases, string test)
    {
        using (target)
        {
            FuzzReport report = FuzzRunner.Run(target, _settings, boundedCases, test, TestContext.Progress);
            TestContext.Out.WriteLine(report.Summary());
            Assert.That(report.Failures, Is.Empty, report.FailureText());
            Assert.That(report.Cases, Is.GreaterThan(0), "no case ran");
        }
    }
}
