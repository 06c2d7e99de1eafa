namespace MiniVmm.Runstate.Tests;

[TestFixture]
public sealed class RunStateNamesTests
{
    /// <summary>The QAPI names of QEMU's <c>RunState</c> (qapi/run-state.json), written out independently of the production list.</summary>
    internal static readonly IReadOnlyDictionary<RunState, string> ExpectedNames = new Dictionary<RunState, string>
    {
        [RunState.Debug] = "debug",
        [RunState.InMigrate] = "inmigrate",
        [RunState.InternalError] = "internal-error",
        [RunState.IoError] = "io-error",
        [RunState.Paused] = "paused",
        [RunState.PostMigrate] = "postmigrate",
        [RunState.Prelaunch] = "prelaunch",
        [RunState.FinishMigrate] = "finish-migrate",
        [RunState.RestoreVm] = "restore-vm",
        [RunState.Running] = "running",
        [RunState.SaveVm] = "save-vm",
        [RunState.Shutdown] = "shutdown",
        [RunState.Suspended] = "suspended",
        [RunState.Watchdog] = "watchdog",
        [RunState.GuestPanicked] = "guest-panicked",
        [RunState.Colo] = "colo",
    };

    private static IEnumerable<TestCaseData> StatesWithNames() =>
        ExpectedNames.Select(pair => new TestCaseData(pair.Key, pair.Value).SetName($"QapiName {pair.Value}"));

    [Test]
    public void EveryEnumValueHasAnExpectedName()
    {
        Assert.That(Enum.GetValues<RunState>(), Is.EquivalentTo(ExpectedNames.Keys));
        Assert.That(ExpectedNames, Has.Count.EqualTo(16));
    }

    [Test]
    public void AllListsEveryStateOnceInDeclarationOrder()
    {
        Assert.That(RunStateNames.All, Is.EqualTo(Enum.GetValues<RunState>()));
        Assert.That(RunStateNames.All, Is.Unique);
    }

    [TestCaseSource(nameof(StatesWithNames))]
    public void ToQapiNameGivesTheSpecName(RunState state, string name)
    {
        Assert.That(state.ToQapiName(), Is.EqualTo(name));
    }

    [TestCaseSource(nameof(StatesWithNames))]
    public void ParseAndTryParseRoundTrip(RunState state, string name)
    {
        Assert.Multiple(() =>
        {
            Assert.That(RunStateNames.TryParse(name, out RunState parsed), Is.True);
            Assert.That(parsed, Is.EqualTo(state));
            Assert.That(RunStateNames.Parse(name), Is.EqualTo(state));
            Assert.That(RunStateNames.Parse(state.ToQapiName()), Is.EqualTo(state));
        });
    }

    [TestCase("")]
    [TestCase("stopped")]
    [TestCase("Running")]
    [TestCase("RUNNING")]
    [TestCase("finish_migrate")]
    [TestCase("FinishMigrate")]
    [TestCase(" running")]
    [TestCase("running ")]
    public void UnknownNamesFailToParse(string name)
    {
        Assert.That(RunStateNames.TryParse(name, out _), Is.False);
        Assert.That(
            () => RunStateNames.Parse(name),
            Throws.ArgumentException.With.Message.Contains($"'{name}'"));
    }

    [Test]
    public void ToQapiNameOfAnUndefinedValueThrows()
    {
        Assert.That(() => ((RunState)16).ToQapiName(), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => ((RunState)(-1)).ToQapiName(), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
