namespace MiniVmm.Runstate.Tests;

[TestFixture]
public sealed class RunStateTransitionTableTests
{
    // QEMU 7.2's runstate_transitions_def, written out by hand. A line without "->"
    // continues the row above it.
    private const string Qemu72TableText = """
        prelaunch      -> inmigrate
        debug          -> running, finish-migrate, prelaunch, suspended
        inmigrate      -> internal-error, io-error, paused, running, shutdown, suspended, watchdog,
                          guest-panicked, finish-migrate, prelaunch, postmigrate, colo
        internal-error -> paused, finish-migrate, prelaunch
        io-error       -> running, finish-migrate, prelaunch
        paused         -> running, finish-migrate, postmigrate, prelaunch, colo
        postmigrate    -> running, finish-migrate, prelaunch
        prelaunch      -> running, finish-migrate, inmigrate
        finish-migrate -> running, paused, postmigrate, prelaunch, colo
        restore-vm     -> running, prelaunch
        colo           -> running, prelaunch, shutdown
        running        -> debug, internal-error, io-error, paused, finish-migrate, restore-vm,
                          save-vm, shutdown, watchdog, guest-panicked, colo, suspended
        save-vm        -> running
        shutdown       -> paused, finish-migrate, prelaunch, colo
        suspended      -> running, finish-migrate, prelaunch, colo
        watchdog       -> running, finish-migrate, prelaunch, colo
        guest-panicked -> running, finish-migrate, prelaunch
        """;

    // What QEMU master's runstate_transitions_def adds to the 7.2 table.
    private const string MasterExtraText = """
        paused         -> suspended
        prelaunch      -> suspended
        finish-migrate -> internal-error, io-error, shutdown, suspended, watchdog, guest-panicked
        restore-vm     -> suspended
        save-vm        -> suspended
        suspended      -> paused, save-vm, restore-vm, shutdown
        """;

    private static readonly IReadOnlySet<(RunState From, RunState To)> ExpectedQemu72 = ParseTable(Qemu72TableText);

    private static readonly IReadOnlySet<(RunState From, RunState To)> ExpectedMaster =
        ParseTable(Qemu72TableText).Union(ParseTable(MasterExtraText)).ToHashSet();

    private static RunState StateNamed(string name) =>
        RunStateNamesTests.ExpectedNames.Single(pair => pair.Value == name).Key;

    private static HashSet<(RunState, RunState)> ParseTable(string text)
    {
        var edges = new HashSet<(RunState, RunState)>();
        RunState? from = null;
        foreach (string rawLine in text.Split('\n'))
        {
            string line = rawLine.Trim();
            if (line.Length == 0)
            {
                continue;
            }

            string targets = line;
            int arrow = line.IndexOf("->", StringComparison.Ordinal);
            if (arrow >= 0)
            {
                from = StateNamed(line[..arrow].Trim());
                targets = line[(arrow + 2)..];
            }

            RunState source = from ?? throw new FormatException($"continuation line without a row: {line}");
            foreach (string target in targets.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                edges.Add((source, StateNamed(target)));
            }
        }

        return edges;
    }

    private static RunStateTransitionTable TableNamed(string name) => name switch
    {
        "qemu-7.2" => RunStateTransitionTable.Qemu72,
        "qemu-master" => RunStateTransitionTable.Master,
        _ => throw new ArgumentException(name, nameof(name)),
    };

    private static IEnumerable<TestCaseData> EveryPairOfBothTables(string check)
    {
        foreach ((string tableName, IReadOnlySet<(RunState, RunState)> expected) in
                 new[] { ("qemu-7.2", ExpectedQemu72), ("qemu-master", ExpectedMaster) })
        {
            foreach (RunState from in Enum.GetValues<RunState>())
            {
                foreach (RunState to in Enum.GetValues<RunState>())
                {
                    bool allowed = from == to || expected.Contains((from, to));
                    yield return new TestCaseData(tableName, from, to, allowed)
                        .SetName($"{check} {tableName}: {from.ToQapiName()} -> {to.ToQapiName()} {(allowed ? "allowed" : "forbidden")}");
                }
            }
        }
    }

    [TestCaseSource(nameof(EveryPairOfBothTables), new object[] { "Allows" })]
    public void AllowsMatchesTheSpecTable(string tableName, RunState from, RunState to, bool allowed)
    {
        RunStateTransitionTable table = TableNamed(tableName);

        Assert.That(
            table.Allows(from, to),
            Is.EqualTo(allowed),
            $"{tableName}: '{from.ToQapiName()}' -> '{to.ToQapiName()}' should be {(allowed ? "allowed" : "forbidden")}");
    }

    [TestCaseSource(nameof(EveryPairOfBothTables), new object[] { "Check" })]
    public void CheckThrowsExactlyForForbiddenPairs(string tableName, RunState from, RunState to, bool allowed)
    {
        RunStateTransitionTable table = TableNamed(tableName);

        if (allowed)
        {
            Assert.That(() => table.Check(from, to), Throws.Nothing);
        }
        else
        {
            Assert.That(
                () => table.Check(from, to),
                Throws.TypeOf<InvalidRunStateTransitionException>()
                    .With.Message.EqualTo($"invalid runstate transition: '{from.ToQapiName()}' -> '{to.ToQapiName()}'")
                    .And.Property(nameof(InvalidRunStateTransitionException.From)).EqualTo(from)
                    .And.Property(nameof(InvalidRunStateTransitionException.To)).EqualTo(to));
        }
    }

    [Test]
    public void EdgesListExactlyTheSpecTransitions()
    {
        Assert.Multiple(() =>
        {
            Assert.That(RunStateTransitionTable.Qemu72.Edges, Is.EquivalentTo(ExpectedQemu72));
            Assert.That(RunStateTransitionTable.Master.Edges, Is.EquivalentTo(ExpectedMaster));
            Assert.That(RunStateTransitionTable.Master.Edges.Where(e => e.From == e.To), Is.Empty);
        });
    }

    [Test]
    public void TheSpecTextParsesToTheExpectedSizes()
    {
        // Guards the parser of this test: 7.2 has 71 distinct edges (prelaunch -> inmigrate is
        // listed twice), master adds 14.
        Assert.That(ExpectedQemu72, Has.Count.EqualTo(71));
        Assert.That(ExpectedMaster, Has.Count.EqualTo(71 + 14));
    }

    [Test]
    public void MasterIsASupersetOfQemu72()
    {
        Assert.That(RunStateTransitionTable.Qemu72.Edges, Is.SubsetOf(RunStateTransitionTable.Master.Edges));
    }

    [Test]
    public void TablesHaveTheirNames()
    {
        Assert.That(RunStateTransitionTable.Qemu72.Name, Is.EqualTo("qemu-7.2"));
        Assert.That(RunStateTransitionTable.Master.Name, Is.EqualTo("qemu-master"));
    }
}
