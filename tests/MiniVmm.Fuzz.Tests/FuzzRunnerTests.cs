using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.Migration.Savevm;

namespace MiniVmm.Fuzz.Tests;

/// <summary>The fuzzer's own rules, shown to fail when they should: a fuzzer that cannot fail proves nothing.</summary>
[TestFixture]
public sealed class FuzzRunnerTests
{
    private static readonly FuzzSettings Settings =
        new(0x5eed, SeedFromClock: false, OnlyCase: null, Duration: null, Cases: null, Path.Combine(Path.GetTempPath(), "minivmm-fuzz-runner-tests"));

    [Test]
    public void An_exception_that_escapes_is_a_failure_with_its_replay()
    {
        FuzzReport report = Run(_ => throw new NullReferenceException("boom"), cases: 3);

        Assert.That(report.Failures, Is.Not.Empty);
        Assert.That(report.Failures[0], Does.Contain("unhandled NullReferenceException: NullReferenceException: boom"));
        Assert.That(report.Failures[0], Does.Contain("MINIVMM_FUZZ_SEED=0x5eed MINIVMM_FUZZ_CASE=0"));
    }

    [Test]
    public void A_typed_error_that_wraps_a_runtime_fault_is_a_failure()
    {
        FuzzReport report = Run(_ =>
        {
            try
            {
                throw new MigrationLoadException("error while loading state", 12, null, new IndexOutOfRangeException("inside"));
            }
            catch (MigrationLoadException error)
            {
                ErrorRules.RequireStreamError(error, "the load", typeof(MigrationLoadException));
                return CaseOutcome.Rejected;
            }
        }, cases: 0);

        Assert.That(report.Failures.Single(), Does.Contain("wraps a runtime fault (IndexOutOfRangeException)"));
    }

    [Test]
    public void A_typed_error_without_an_offset_is_a_failure()
    {
        FuzzReport report = Run(_ =>
        {
            ErrorRules.RequireStreamError(new MigrationLoadException("no offset", -1), "the load", typeof(MigrationLoadException));
            return CaseOutcome.Rejected;
        }, cases: 0);

        Assert.That(report.Failures.Single(), Does.Contain("failed without a stream offset"));
    }

    [Test]
    public void A_case_that_allocates_beyond_its_budget_is_a_failure()
    {
        FuzzReport report = Run(_ =>
        {
            GC.KeepAlive(new byte[FuzzRunner.AllocationAllowance + 1024]);
            return CaseOutcome.Accepted;
        }, cases: 0);

        Assert.That(report.Failures.Single(), Does.Contain("allocated").And.Contain("the limit is"));
    }

    [Test]
    public void A_case_that_hangs_is_a_failure()
    {
        using var release = new ManualResetEventSlim();
        FuzzReport report = Run(_ =>
        {
            release.Wait();
            return CaseOutcome.Accepted;
        }, cases: 0, timeout: TimeSpan.FromMilliseconds(200));
        release.Set();

        Assert.That(report.Failures.Single(), Does.Contain("hung: no result within 0.2 s"));
    }

    [Test]
    public void A_rejected_seed_is_a_failure()
    {
        FuzzReport report = Run(_ => CaseOutcome.Rejected, cases: 0);

        Assert.That(report.Failures.Single(), Does.Contain("an unmutated seed was rejected"));
    }

    [Test]
    public void The_same_seed_makes_the_same_cases_and_another_seed_other_cases()
    {
        List<string> first = Inputs(Settings);
        List<string> again = Inputs(Settings);
        List<string> other = Inputs(Settings with { Seed = 0x5eee });

        Assert.That(again, Is.EqualTo(first));
        Assert.That(other, Is.Not.EqualTo(first));
        Assert.That(first.Distinct().Count(), Is.GreaterThan(first.Count / 2), "the mutations hardly vary");
    }

    [Test]
    public void One_case_replays_alone_as_it_ran_in_the_whole_run()
    {
        List<string> all = Inputs(Settings);

        List<string> one = Inputs(Settings with { OnlyCase = 17 });

        Assert.That(one, Is.EqualTo(new[] { all[17] }));
    }

    private static List<string> Inputs(FuzzSettings settings)
    {
        var inputs = new List<string>();
        using var target = new LambdaTarget(input =>
        {
            inputs.Add(Convert.ToHexString(input));
            return CaseOutcome.Accepted;
        }, TimeSpan.FromSeconds(10));
        FuzzReport report = FuzzRunner.Run(target, settings, 40, "test", TextWriter.Null);
        Assert.That(report.Failures, Is.Empty);
        return inputs;
    }

    /// <summary>Runs the seed and <paramref name="cases"/> mutated cases through <paramref name="run"/>.</summary>
    private static FuzzReport Run(Func<byte[], CaseOutcome> run, int cases, TimeSpan? timeout = null)
    {
        using var target = new LambdaTarget(run, timeout ?? TimeSpan.FromSeconds(10));
        return FuzzRunner.Run(target, Settings, cases, "test", TextWriter.Null);
    }

    private sealed class LambdaTarget(Func<byte[], CaseOutcome> run, TimeSpan timeout) : IFuzzTarget
    {
        private readonly Func<byte[], CaseOutcome> _run = run;

        public string Name => "lambda";

        public IReadOnlyList<FuzzSeed> Seeds { get; } = [new("seed", "0123456789abcdef0123456789abcdef"u8.ToArray(), [0, 8, 16])];

        public bool BigEndianLengths => true;

        public TimeSpan CaseTimeout => timeout;

        public string? LastRejection => "rejected by the test";

        public CaseOutcome Run(byte[] input) => _run(input);

        public void Dispose()
        {
        }
    }
}
