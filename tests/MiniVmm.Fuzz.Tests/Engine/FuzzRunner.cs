using System.Diagnostics;
using System.Text;

namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// Runs one target: first every seed unmutated (each must be accepted, which shows the seeds
/// reach deep into the target), then mutated cases — a bounded count, or for a given time in a
/// long run. Every case gets its own seed derived from the run's seed, the target and the case
/// number, so <c>MINIVMM_FUZZ_SEED</c> and <c>MINIVMM_FUZZ_CASE</c> replay it exactly. A case
/// breaks the rules when it hangs past the target's case timeout, lets an exception escape or
/// throws a <see cref="FuzzFinding"/>, or allocates more than 64 MiB plus 16 bytes per input
/// byte. Failing inputs are written to the failure directory.
/// </summary>
internal static class FuzzRunner
{
    /// <summary>Memory a case may always allocate, besides 16 bytes per input byte.</summary>
    public const long AllocationAllowance = 64L << 20;

    /// <summary>Bytes a case may allocate per input byte.</summary>
    public const long AllocationPerInputByte = 16;

    private const int MaxReportedFailures = 8;
    private const int MaxHangs = 2;

    /// <summary>Runs <paramref name="target"/> and returns what happened; failures are in the report, not thrown.</summary>
    public static FuzzReport Run(IFuzzTarget target, FuzzSettings settings, int boundedCases, string testName, TextWriter log)
    {
        var report = new FuzzReport(target.Name, settings.Seed);
        var mutator = new Mutator(target.BigEndianLengths);
        int seeds = target.Seeds.Count;
        long lastCase = settings.OnlyCase ?? (settings.Duration is null ? seeds + (long)(settings.Cases ?? boundedCases) - 1 : long.MaxValue);
        long firstCase = settings.OnlyCase ?? 0;
        var clock = Stopwatch.StartNew();
        TimeSpan nextProgress = TimeSpan.FromSeconds(30);
        var worker = new CaseWorker($"fuzz {target.Name}");
        try
        {
            for (long caseNumber = firstCase; caseNumber <= lastCase; caseNumber++)
            {
                if (settings.Duration is { } duration && clock.Elapsed >= duration)
                {
                    break;
                }

                byte[] input;
                string description;
                bool isSeed = caseNumber < seeds;
                if (isSeed)
                {
                    FuzzSeed seed = target.Seeds[(int)caseNumber];
                    (input, description) = (seed.Bytes, $"{seed.Name}, unmutated");
                }
                else
                {
                    var random = new FuzzRandom(FuzzRandom.CaseSeed(settings.Seed, target.Name, caseNumber));
                    (input, description) = mutator.Mutate(random, target.Seeds);
                }

                string? failure = RunCase(target, worker, input, isSeed, out CaseOutcome outcome, out bool hung);
                report.Count(outcome, failure is null);
                if (failure is not null)
                {
                    string saved = Save(settings, target.Name, caseNumber, input);
                    report.Failures.Add(
                        $"case {caseNumber} of {target.Name} ({description}; {input.Length} bytes, saved as {saved}): {failure}\n" +
                        $"  replay: {settings.ReplayHint(testName, caseNumber)}");
                    if (hung)
                    {
                        report.Hangs++;
                        worker = new CaseWorker($"fuzz {target.Name}");
                    }

                    if (report.Failures.Count >= MaxReportedFailures || report.Hangs >= MaxHangs)
                    {
                        break;
                    }
                }

                if (settings.Duration is not null && clock.Elapsed >= nextProgress)
                {
                    log.WriteLine($"fuzz {target.Name}: {report.Cases} cases in {clock.Elapsed.TotalSeconds:0} s, {report.Failures.Count} failures");
                    nextProgress += TimeSpan.FromSeconds(30);
                }
            }
        }
        finally
        {
            worker.Dispose();
        }

        report.Elapsed = clock.Elapsed;
        return report;
    }

    private static string? RunCase(IFuzzTarget target, CaseWorker worker, byte[] input, bool isSeed, out CaseOutcome outcome, out bool hung)
    {
        hung = false;
        if (!worker.TryRun(() => target.Run(input), target.CaseTimeout, out outcome, out Exception? error, out long allocated))
        {
            hung = true;
            return $"hung: no result within {target.CaseTimeout.TotalSeconds:0.#} s";
        }

        if (error is FuzzFinding finding)
        {
            return finding.Message;
        }

        if (error is not null)
        {
            return $"unhandled {error.GetType().Name}: {ErrorRules.Describe(error)}";
        }

        long limit = AllocationAllowance + AllocationPerInputByte * input.Length;
        if (allocated > limit)
        {
            return $"allocated {allocated} bytes for a {input.Length}-byte input (the limit is {limit})";
        }

        if (isSeed && outcome != CaseOutcome.Accepted)
        {
            return $"an unmutated seed was rejected (the seeds no longer match what the target accepts): {target.LastRejection}";
        }

        return null;
    }

    private static string Save(FuzzSettings settings, string target, long caseNumber, byte[] input)
    {
        try
        {
            Directory.CreateDirectory(settings.FailureDirectory);
            string path = Path.Combine(settings.FailureDirectory, $"{target}-0x{settings.Seed:x}-{caseNumber}.bin");
            File.WriteAllBytes(path, input);
            return path;
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return $"(not saved: {error.Message})";
        }
    }
}

/// <summary>What one target's run did.</summary>
internal sealed class FuzzReport(string target, ulong seed)
{
    public string Target { get; } = target;

    public ulong Seed { get; } = seed;

    public long Cases { get; private set; }

    public long Accepted { get; private set; }

    public long Rejected { get; private set; }

    public int Hangs { get; set; }

    public TimeSpan Elapsed { get; set; }

    public List<string> Failures { get; } = [];

    public void Count(CaseOutcome outcome, bool clean)
    {
        Cases++;
        if (!clean)
        {
            return;
        }

        if (outcome == CaseOutcome.Accepted)
        {
            Accepted++;
        }
        else
        {
            Rejected++;
        }
    }

    public string Summary() =>
        $"fuzz {Target}: {Cases} cases in {Elapsed.TotalSeconds:0.0} s (seed 0x{Seed:x}): {Accepted} accepted, {Rejected} rejected with typed errors, {Failures.Count} failures";

    public string FailureText()
    {
        var text = new StringBuilder(Summary());
        foreach (string failure in Failures)
        {
            text.AppendLine().AppendLine().Append(failure);
        }

        return text.ToString();
    }
}
