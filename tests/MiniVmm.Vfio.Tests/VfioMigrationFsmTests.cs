using System.Collections.Frozen;
using MiniVmm.Native;
using MiniVmm.Vfio;

namespace MiniVmm.Vfio.Tests;

/// <summary>
/// The state machine against the uAPI rules (the comment on <c>enum vfio_device_mig_state</c> in
/// the kernel's <c>vfio.h</c>), for the four valid flag sets and every (current, requested) pair.
/// The expected paths below are written out by hand from those rules (the per-flag-set arc lists
/// and the uAPI's list of multi-step paths), not generated from the code.
/// </summary>
public class VfioMigrationFsmTests
{
    private const VfioMigrationFlags SC = VfioMigrationFlags.StopCopy;
    private const VfioMigrationFlags P2P = VfioMigrationFlags.P2P;
    private const VfioMigrationFlags PRE = VfioMigrationFlags.PreCopy;

    private static VfioDeviceState[] AllStates => Enum.GetValues<VfioDeviceState>();

    /// <summary>The four flag sets the uAPI accepts.</summary>
    public static VfioMigrationFlags[] FlagSets => [SC, SC | P2P, SC | PRE, SC | P2P | PRE];

    // Short names used in the tables.
    private static readonly FrozenDictionary<string, VfioDeviceState> Names = new Dictionary<string, VfioDeviceState>
    {
        ["ERR"] = VfioDeviceState.Error,
        ["STOP"] = VfioDeviceState.Stop,
        ["RUN"] = VfioDeviceState.Running,
        ["SC"] = VfioDeviceState.StopCopy,
        ["RES"] = VfioDeviceState.Resuming,
        ["RUN_P2P"] = VfioDeviceState.RunningP2P,
        ["PRE"] = VfioDeviceState.PreCopy,
        ["PRE_P2P"] = VfioDeviceState.PreCopyP2P,
    }.ToFrozenDictionary();

    // Supported states per flag set.
    private static readonly FrozenDictionary<VfioMigrationFlags, string> Supported = new Dictionary<VfioMigrationFlags, string>
    {
        [SC] = "STOP RUN SC RES",
        [SC | P2P] = "STOP RUN SC RES RUN_P2P",
        [SC | PRE] = "STOP RUN SC RES PRE",
        [SC | P2P | PRE] = "STOP RUN SC RES RUN_P2P PRE PRE_P2P",
    }.ToFrozenDictionary();

    // Arcs drivers must implement per flag set (the uAPI's per-feature lists).
    private static readonly FrozenDictionary<VfioMigrationFlags, string> Arcs = new Dictionary<VfioMigrationFlags, string>
    {
        [SC] = "STOP>RUN RUN>STOP STOP>SC SC>STOP STOP>RES RES>STOP",
        [SC | P2P] = "RUN>RUN_P2P RUN_P2P>RUN RUN_P2P>STOP STOP>RUN_P2P STOP>SC SC>STOP STOP>RES RES>STOP",
        [SC | PRE] = "STOP>RUN RUN>STOP STOP>SC SC>STOP STOP>RES RES>STOP RUN>PRE PRE>RUN PRE>SC",
        [SC | P2P | PRE] = "RUN>RUN_P2P RUN_P2P>RUN RUN_P2P>STOP STOP>RUN_P2P STOP>SC SC>STOP STOP>RES RES>STOP "
            + "RUN>PRE PRE>RUN PRE>PRE_P2P PRE_P2P>PRE PRE_P2P>RUN_P2P PRE_P2P>SC RUN_P2P>PRE_P2P",
    }.ToFrozenDictionary();

    // Full expected paths "FROM>TO = hop hop ..." for every pair of distinct supported states;
    // "EINVAL" for the refused ones.
    private static readonly FrozenDictionary<VfioMigrationFlags, string[]> ExpectedPaths = new Dictionary<VfioMigrationFlags, string[]>
    {
        [SC] =
        [
            "STOP>RUN = RUN", "STOP>SC = SC", "STOP>RES = RES",
            "RUN>STOP = STOP", "RUN>SC = STOP SC", "RUN>RES = STOP RES",
            "SC>STOP = STOP", "SC>RUN = STOP RUN", "SC>RES = STOP RES",
            "RES>STOP = STOP", "RES>RUN = STOP RUN", "RES>SC = STOP SC",
        ],
        [SC | P2P] =
        [
            "STOP>RUN = RUN_P2P RUN", "STOP>SC = SC", "STOP>RES = RES", "STOP>RUN_P2P = RUN_P2P",
            "RUN>STOP = RUN_P2P STOP", "RUN>SC = RUN_P2P STOP SC", "RUN>RES = RUN_P2P STOP RES", "RUN>RUN_P2P = RUN_P2P",
            "SC>STOP = STOP", "SC>RUN = STOP RUN_P2P RUN", "SC>RES = STOP RES", "SC>RUN_P2P = STOP RUN_P2P",
            "RES>STOP = STOP", "RES>RUN = STOP RUN_P2P RUN", "RES>SC = STOP SC", "RES>RUN_P2P = STOP RUN_P2P",
            "RUN_P2P>STOP = STOP", "RUN_P2P>RUN = RUN", "RUN_P2P>SC = STOP SC", "RUN_P2P>RES = STOP RES",
        ],
        [SC | PRE] =
        [
            "STOP>RUN = RUN", "STOP>SC = SC", "STOP>RES = RES", "STOP>PRE = RUN PRE",
            "RUN>STOP = STOP", "RUN>SC = STOP SC", "RUN>RES = STOP RES", "RUN>PRE = PRE",
            "SC>STOP = STOP", "SC>RUN = STOP RUN", "SC>RES = STOP RES", "SC>PRE = EINVAL",
            "RES>STOP = STOP", "RES>RUN = STOP RUN", "RES>SC = STOP SC", "RES>PRE = STOP RUN PRE",
            "PRE>STOP = RUN STOP", "PRE>RUN = RUN", "PRE>SC = SC", "PRE>RES = RUN STOP RES",
        ],
        [SC | P2P | PRE] =
        [
            "STOP>RUN = RUN_P2P RUN", "STOP>SC = SC", "STOP>RES = RES", "STOP>RUN_P2P = RUN_P2P",
            "STOP>PRE = RUN_P2P RUN PRE", "STOP>PRE_P2P = RUN_P2P PRE_P2P",
            "RUN>STOP = RUN_P2P STOP", "RUN>SC = RUN_P2P STOP SC", "RUN>RES = RUN_P2P STOP RES",
            "RUN>RUN_P2P = RUN_P2P", "RUN>PRE = PRE", "RUN>PRE_P2P = RUN_P2P PRE_P2P",
            "SC>STOP = STOP", "SC>RUN = STOP RUN_P2P RUN", "SC>RES = STOP RES", "SC>RUN_P2P = STOP RUN_P2P",
            "SC>PRE = EINVAL", "SC>PRE_P2P = EINVAL",
            "RES>STOP = STOP", "RES>RUN = STOP RUN_P2P RUN", "RES>SC = STOP SC", "RES>RUN_P2P = STOP RUN_P2P",
            "RES>PRE = STOP RUN_P2P RUN PRE", "RES>PRE_P2P = STOP RUN_P2P PRE_P2P",
            "RUN_P2P>STOP = STOP", "RUN_P2P>RUN = RUN", "RUN_P2P>SC = STOP SC", "RUN_P2P>RES = STOP RES",
            "RUN_P2P>PRE = RUN PRE", "RUN_P2P>PRE_P2P = PRE_P2P",
            "PRE>STOP = RUN RUN_P2P STOP", "PRE>RUN = RUN", "PRE>SC = PRE_P2P SC", "PRE>RES = RUN RUN_P2P STOP RES",
            "PRE>RUN_P2P = RUN RUN_P2P", "PRE>PRE_P2P = PRE_P2P",
            "PRE_P2P>STOP = RUN_P2P STOP", "PRE_P2P>RUN = RUN_P2P RUN", "PRE_P2P>SC = SC",
            "PRE_P2P>RES = RUN_P2P STOP RES", "PRE_P2P>RUN_P2P = RUN_P2P", "PRE_P2P>PRE = PRE",
        ],
    }.ToFrozenDictionary();

    private static HashSet<VfioDeviceState> SupportedStates(VfioMigrationFlags flags)
        => Supported[flags].Split(' ').Select(n => Names[n]).ToHashSet();

    private static HashSet<(VfioDeviceState, VfioDeviceState)> ArcSet(VfioMigrationFlags flags)
        => Arcs[flags].Split(' ').Select(a => a.Split('>')).Select(p => (Names[p[0]], Names[p[1]])).ToHashSet();

    /// <summary>Expected outcome of a pair: the path, or null for EINVAL.</summary>
    private static VfioDeviceState[]? Expected(VfioMigrationFlags flags, VfioDeviceState from, VfioDeviceState to)
    {
        HashSet<VfioDeviceState> supported = SupportedStates(flags);
        if (!supported.Contains(from) || !supported.Contains(to))
        {
            return null;
        }
        if (from == to)
        {
            return [];
        }
        string key = Names.Single(n => n.Value == from).Key + ">" + Names.Single(n => n.Value == to).Key;
        string row = ExpectedPaths[flags].Single(r => r.Split(" = ")[0] == key);
        string hops = row.Split(" = ")[1];
        return hops == "EINVAL" ? null : hops.Split(' ').Select(n => Names[n]).ToArray();
    }

    [Test]
    public void TheTablesCoverEveryPairOfDistinctSupportedStates()
    {
        foreach (VfioMigrationFlags flags in FlagSets)
        {
            int n = SupportedStates(flags).Count;
            Assert.That(ExpectedPaths[flags], Has.Length.EqualTo(n * (n - 1)), flags.ToString());
            Assert.That(ExpectedPaths[flags].Distinct().Count(), Is.EqualTo(n * (n - 1)));
        }
    }

    [Test]
    public void ArcCountsMatchTheSpec()
    {
        Assert.That(ArcSet(SC), Has.Count.EqualTo(6));
        Assert.That(ArcSet(SC | P2P), Has.Count.EqualTo(8));
        Assert.That(ArcSet(SC | PRE), Has.Count.EqualTo(9));
        Assert.That(ArcSet(SC | P2P | PRE), Has.Count.EqualTo(15));
    }

    [Test]
    public void EnumValuesAreTheKernels()
    {
        Assert.That((int)VfioDeviceState.Error, Is.EqualTo(0));
        Assert.That((int)VfioDeviceState.Stop, Is.EqualTo(1));
        Assert.That((int)VfioDeviceState.Running, Is.EqualTo(2));
        Assert.That((int)VfioDeviceState.StopCopy, Is.EqualTo(3));
        Assert.That((int)VfioDeviceState.Resuming, Is.EqualTo(4));
        Assert.That((int)VfioDeviceState.RunningP2P, Is.EqualTo(5));
        Assert.That((int)VfioDeviceState.PreCopy, Is.EqualTo(6));
        Assert.That((int)VfioDeviceState.PreCopyP2P, Is.EqualTo(7));
        Assert.That((int)VfioMigrationFlags.StopCopy, Is.EqualTo(1));
        Assert.That((int)VfioMigrationFlags.P2P, Is.EqualTo(2));
        Assert.That((int)VfioMigrationFlags.PreCopy, Is.EqualTo(4));
    }

    [TestCaseSource(nameof(FlagSets))]
    public void NextStateMatchesTheExpectedFirstHopForEveryPair(VfioMigrationFlags flags)
    {
        foreach (VfioDeviceState from in AllStates)
        {
            foreach (VfioDeviceState to in AllStates)
            {
                VfioDeviceState[]? expected = Expected(flags, from, to);
                string what = $"{flags}: {from} -> {to}";
                if (expected is null)
                {
                    var error = Assert.Throws<VfioMigrationException>(() => VfioMigrationFsm.NextState(flags, from, to), what);
                    Assert.That(error!.Errno, Is.EqualTo(Errno.EINVAL), what);
                }
                else
                {
                    VfioDeviceState first = expected.Length == 0 ? to : expected[0];
                    Assert.That(VfioMigrationFsm.NextState(flags, from, to), Is.EqualTo(first), what);
                }
            }
        }
    }

    [TestCaseSource(nameof(FlagSets))]
    public void PathMatchesTheExpectedPathWithLegalArcsOnly(VfioMigrationFlags flags)
    {
        HashSet<(VfioDeviceState, VfioDeviceState)> arcs = ArcSet(flags);
        HashSet<VfioDeviceState> supported = SupportedStates(flags);
        foreach (VfioDeviceState from in supported)
        {
            foreach (VfioDeviceState to in supported)
            {
                string what = $"{flags}: {from} -> {to}";
                VfioDeviceState[]? expected = Expected(flags, from, to);
                if (expected is null)
                {
                    var error = Assert.Throws<VfioMigrationException>(() => VfioMigrationFsm.Path(flags, from, to), what);
                    Assert.That(error!.Errno, Is.EqualTo(Errno.EINVAL), what);
                    continue;
                }
                IReadOnlyList<VfioDeviceState> path = VfioMigrationFsm.Path(flags, from, to);
                Assert.That(path, Is.EqualTo(expected), what);
                VfioDeviceState state = from;
                for (int i = 0; i < path.Count; i++)
                {
                    Assert.That(arcs, Does.Contain((state, path[i])), $"{what}: arc {state} -> {path[i]}");
                    // A data fd may only come from the final arc (drivers WARN otherwise).
                    if (i < path.Count - 1)
                    {
                        Assert.That(VfioMigrationFsm.OpensDataSession(state, path[i]), Is.False, what);
                    }
                    state = path[i];
                }
                Assert.That(state, Is.EqualTo(to), what);
            }
        }
    }

    [TestCaseSource(nameof(FlagSets))]
    public void ErrorCanNeitherBeRequestedNorLeft(VfioMigrationFlags flags)
    {
        foreach (VfioDeviceState state in AllStates)
        {
            Assert.That(Assert.Throws<VfioMigrationException>(
                () => VfioMigrationFsm.NextState(flags, state, VfioDeviceState.Error))!.Errno, Is.EqualTo(Errno.EINVAL));
            Assert.That(Assert.Throws<VfioMigrationException>(
                () => VfioMigrationFsm.NextState(flags, VfioDeviceState.Error, state))!.Errno, Is.EqualTo(Errno.EINVAL));
            if (state != VfioDeviceState.Error)
            {
                Assert.That(Assert.Throws<VfioMigrationException>(
                    () => VfioMigrationFsm.Path(flags, state, VfioDeviceState.Error))!.Errno, Is.EqualTo(Errno.EINVAL));
                Assert.That(Assert.Throws<VfioMigrationException>(
                    () => VfioMigrationFsm.Path(flags, VfioDeviceState.Error, state))!.Errno, Is.EqualTo(Errno.EINVAL));
            }
        }
        // The driver loop does nothing when the state already equals the request, even in ERROR.
        Assert.That(VfioMigrationFsm.Path(flags, VfioDeviceState.Error, VfioDeviceState.Error), Is.Empty);
    }

    [Test]
    public void StopCopyToPreCopyIsBlockedNotLooped()
    {
        foreach (VfioMigrationFlags flags in new[] { SC | PRE, SC | P2P | PRE })
        {
            Assert.That(Assert.Throws<VfioMigrationException>(() => VfioMigrationFsm.NextState(
                flags, VfioDeviceState.StopCopy, VfioDeviceState.PreCopy))!.Errno, Is.EqualTo(Errno.EINVAL));
            Assert.That(Assert.Throws<VfioMigrationException>(() => VfioMigrationFsm.Path(
                flags, VfioDeviceState.StopCopy, VfioDeviceState.PreCopy))!.Errno, Is.EqualTo(Errno.EINVAL));
        }
        Assert.That(Assert.Throws<VfioMigrationException>(() => VfioMigrationFsm.NextState(
            SC | P2P | PRE, VfioDeviceState.StopCopy, VfioDeviceState.PreCopyP2P))!.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(Assert.Throws<VfioMigrationException>(() => VfioMigrationFsm.Path(
            SC | P2P | PRE, VfioDeviceState.StopCopy, VfioDeviceState.PreCopyP2P))!.Errno, Is.EqualTo(Errno.EINVAL));
    }

    [Test]
    public void FlagsWithoutStopCopySupportNothing()
    {
        foreach (VfioMigrationFlags flags in new[] { VfioMigrationFlags.None, P2P, PRE, P2P | PRE })
        {
            foreach (VfioDeviceState from in AllStates)
            {
                foreach (VfioDeviceState to in AllStates)
                {
                    Assert.That(Assert.Throws<VfioMigrationException>(
                        () => VfioMigrationFsm.NextState(flags, from, to))!.Errno, Is.EqualTo(Errno.EINVAL));
                    Assert.That(Assert.Throws<VfioMigrationException>(
                        () => VfioMigrationFsm.Path(flags, from, to))!.Errno, Is.EqualTo(Errno.EINVAL));
                }
            }
        }
    }

    [Test]
    public void OutOfRangeStatesAreRefused()
    {
        var eight = (VfioDeviceState)8;
        VfioMigrationFlags all = SC | P2P | PRE;
        Assert.That(Assert.Throws<VfioMigrationException>(
            () => VfioMigrationFsm.NextState(all, VfioDeviceState.Stop, eight))!.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(Assert.Throws<VfioMigrationException>(
            () => VfioMigrationFsm.NextState(all, eight, VfioDeviceState.Stop))!.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(Assert.Throws<VfioMigrationException>(
            () => VfioMigrationFsm.Path(all, VfioDeviceState.Stop, eight))!.Errno, Is.EqualTo(Errno.EINVAL));
        Assert.That(Assert.Throws<VfioMigrationException>(
            () => VfioMigrationFsm.Path(all, (VfioDeviceState)(-1), VfioDeviceState.Stop))!.Errno, Is.EqualTo(Errno.EINVAL));
    }
}
