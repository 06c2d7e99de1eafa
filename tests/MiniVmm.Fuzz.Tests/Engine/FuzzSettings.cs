using System.Globalization;

namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// How one fuzz run is driven, from the environment:
/// <list type="bullet">
/// <item><c>MINIVMM_FUZZ_SEED</c>: the run's seed (decimal or 0x hex); without it, one is taken from the clock.</item>
/// <item><c>MINIVMM_FUZZ_CASE</c>: replay only this case number (with the seed of the failing run).</item>
/// <item><c>MINIVMM_FUZZ_SECONDS</c>: run each target for this long instead of its bounded case count (the long run).</item>
/// <item><c>MINIVMM_FUZZ_CASES</c>: run each target this many cases instead of its bounded count.</item>
/// <item><c>MINIVMM_FUZZ_OUT</c>: where failing inputs are written (default: <c>fuzz-failures</c> under the test output).</item>
/// </list>
/// </summary>
internal sealed record FuzzSettings(ulong Seed, bool SeedFromClock, long? OnlyCase, TimeSpan? Duration, int? Cases, string FailureDirectory)
{
    public const string SeedVariable = "MINIVMM_FUZZ_SEED";
    public const string CaseVariable = "MINIVMM_FUZZ_CASE";
    public const string SecondsVariable = "MINIVMM_FUZZ_SECONDS";
    public const string CasesVariable = "MINIVMM_FUZZ_CASES";
    public const string OutVariable = "MINIVMM_FUZZ_OUT";

    public static FuzzSettings FromEnvironment()
    {
        string? seedText = Environment.GetEnvironmentVariable(SeedVariable);
        bool fromClock = string.IsNullOrWhiteSpace(seedText);
        ulong seed = fromClock ? (ulong)DateTime.UtcNow.Ticks : ParseNumber(SeedVariable, seedText!);
        long? onlyCase = Environment.GetEnvironmentVariable(CaseVariable) is { Length: > 0 } caseText
            ? (long)ParseNumber(CaseVariable, caseText)
            : null;
        TimeSpan? duration = Environment.GetEnvironmentVariable(SecondsVariable) is { Length: > 0 } secondsText
            ? TimeSpan.FromSeconds(ParseNumber(SecondsVariable, secondsText))
            : null;
        int? cases = Environment.GetEnvironmentVariable(CasesVariable) is { Length: > 0 } casesText
            ? checked((int)ParseNumber(CasesVariable, casesText))
            : null;
        string output = Environment.GetEnvironmentVariable(OutVariable) is { Length: > 0 } outText
            ? outText
            : Path.Combine(AppContext.BaseDirectory, "fuzz-failures");
        return new FuzzSettings(seed, fromClock, onlyCase, duration, cases, output);
    }

    /// <summary>The environment that replays case <paramref name="caseNumber"/> of this run.</summary>
    public string ReplayHint(string test, long caseNumber) =>
        $"{SeedVariable}=0x{Seed:x} {CaseVariable}={caseNumber} dotnet test tests/MiniVmm.Fuzz.Tests -c Release --filter {test}";

    private static ulong ParseNumber(string variable, string text)
    {
        text = text.Trim();
        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong value)
            : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        return ok ? value : throw new ArgumentException($"{variable}={text} is not a number (decimal or 0x hex)");
    }
}
