using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Savevm;

[TestFixture]
public sealed class SaveStateWriterTests
{
    private const string Setup = nameof(ISaveVmHandlers.SaveSetup);
    private const string Iterate = nameof(ISaveVmHandlers.SaveLiveIterate);
    private const string Complete = nameof(ISaveVmHandlers.SaveLiveCompletePrecopy);
    private const string State = nameof(ISaveVmHandlers.SaveState);
    private const string Cleanup = nameof(ISaveVmHandlers.SaveCleanup);

    private static readonly SaveVmHandlerFeatures LiveWithState = SaveVmHandlerFeatures.Live | SaveVmHandlerFeatures.SaveState;

    private readonly CallLog _log = new();
    private readonly BigLock _bql = new();

    [SetUp]
    public void ClearLog() => _log.Clear();

    /// <summary>
    /// The registry of the whole-save scenario, in registration (= stream) order:
    /// ram (live; first round MoreData), inactive (live, is_active false), noiter (live,
    /// is_active_iterate false), vfio (live + save_state), counter (VMState), optional
    /// (VMState, not needed), legacy (save_state only).
    /// </summary>
    private sealed class Scenario
    {
        public Scenario(CallLog log, BigLock bql)
        {
            Ram = new RecordingHandlers("ram", log, bql);
            Ram.IterationOutcomes.Enqueue(IterationOutcome.MoreData);
            Inactive = new RecordingHandlers("inactive", log, bql, LiveWithState) { Active = false };
            NoIterate = new RecordingHandlers("noiter", log, bql) { ActiveIterate = false };
            Vfio = new RecordingHandlers("vfio", log, bql, LiveWithState);
            Legacy = new RecordingHandlers("legacy", log, bql, SaveVmHandlerFeatures.SaveState);
            Registry.RegisterLive("ram", 0, 4, Ram);
            Registry.RegisterLive("inactive", 0, 1, Inactive);
            Registry.RegisterLive("noiter", 0, 1, NoIterate);
            Registry.RegisterLive("vfio", 0, 1, Vfio);
            Registry.RegisterVMState(CounterDevice.Vmsd, Counter, instanceId: 0);
            Registry.RegisterVMState(OptionalDevice.Vmsd, Optional, instanceId: 0);
            Registry.RegisterLive("legacy", 0, 1, Legacy);
        }

        public SaveStateRegistry Registry { get; } = new();
        public RecordingHandlers Ram { get; }
        public RecordingHandlers Inactive { get; }
        public RecordingHandlers NoIterate { get; }
        public RecordingHandlers Vfio { get; }
        public RecordingHandlers Legacy { get; }
        public CounterDevice Counter { get; } = new();
        public OptionalDevice Optional { get; } = new() { Needed = false };

        public void SkipBody(string idStr, MigrationStreamReader reader)
        {
            switch (idStr)
            {
                case "counter":
                    reader.Skip(CounterDevice.BodyLength);
                    break;
                case "optional":
                    reader.Skip(OptionalDevice.BodyLength);
                    break;
                default:
                    SavevmHarness.SkipRecordedBody(reader);
                    break;
            }
        }
    }

    private static SaveStateWriter Writer(SaveStateRegistry registry, MigrationStreamWriter stream, BigLock bql, WireTarget target = WireTarget.Qemu72) =>
        new(registry, stream, new SavevmOptions { Target = target }, bql);

    [Test]
    public void AWholeQemu72SaveCallsTheHandlersInQemusOrder()
    {
        var scenario = new Scenario(_log, _bql);
        var transport = new MemoryStream();
        using var stream = new MigrationStreamWriter(transport, leaveOpen: true);
        SaveStateWriter writer = Writer(scenario.Registry, stream, _bql);

        writer.WriteHeader();
        writer.Setup();
        IReadOnlyList<string> afterSetup = _log.Names();
        IterationOutcome firstRound = writer.Iterate();
        IReadOnlyList<string> afterFirstRound = _log.Names();
        IterationOutcome secondRound = writer.Iterate();
        IReadOnlyList<string> afterSecondRound = _log.Names();
        using (_bql.Acquire())
        {
            writer.CompletePrecopy();
            writer.Cleanup();
        }

        Assert.That(afterSetup, Is.EqualTo(new[] { "ram.SaveSetup", "noiter.SaveSetup", "vfio.SaveSetup" }));
        Assert.That(firstRound, Is.EqualTo(IterationOutcome.MoreData));
        Assert.That(afterFirstRound.Skip(3), Is.EqualTo(new[] { "ram.SaveLiveIterate" }), "7.2 stops at the first entry with data left");
        Assert.That(secondRound, Is.EqualTo(IterationOutcome.Finished));
        Assert.That(afterSecondRound.Skip(4), Is.EqualTo(new[] { "ram.SaveLiveIterate", "vfio.SaveLiveIterate" }));
        Assert.That(_log.Names().Skip(6), Is.EqualTo(new[]
        {
            "ram.SaveLiveCompletePrecopy", "noiter.SaveLiveCompletePrecopy", "vfio.SaveLiveCompletePrecopy",
            "inactive.SaveState", "vfio.SaveState", "legacy.SaveState",
            "ram.SaveCleanup", "inactive.SaveCleanup", "noiter.SaveCleanup", "vfio.SaveCleanup", "legacy.SaveCleanup",
        }));
    }

    [Test]
    public void AWholeQemu72SaveWritesTheSectionsInQemusOrder()
    {
        var scenario = new Scenario(_log, _bql);

        byte[] bytes = SavevmHarness.Save(scenario.Registry, bql: _bql);
        List<ScannedSection> sections = SavevmHarness.ScanSections(bytes, scenario.SkipBody);

        Assert.That(sections.Select(s => s.ToString()), Is.EqualTo(new[]
        {
            "Start ram", "Start noiter", "Start vfio",
            "Part ram",
            "Part ram", "Part vfio",
            "End ram", "End noiter", "End vfio",
            "Full inactive", "Full vfio", "Full counter", "Full legacy",
        }));
        Assert.That(
            sections.Select(s => (s.IdStr, s.SectionId)).Distinct(),
            Is.EquivalentTo(scenario.Registry.Entries
                .Where(e => e.IdStr is not "optional")
                .Select(e => (e.IdStr, (uint)e.SectionId))),
            "every section carries its entry's section id");
    }

    [Test]
    public void AVMStateWhoseNeededTurnsTrueIsWritten()
    {
        var scenario = new Scenario(_log, _bql);
        scenario.Optional.Needed = true;

        byte[] bytes = SavevmHarness.Save(scenario.Registry, bql: _bql);
        List<ScannedSection> sections = SavevmHarness.ScanSections(bytes, scenario.SkipBody);

        Assert.That(
            sections.Where(s => s.Type == SectionType.Full).Select(s => s.IdStr),
            Is.EqualTo(new[] { "inactive", "vfio", "counter", "optional", "legacy" }));
    }

    [Test]
    public void AnInactiveEntryGetsNoSetupIterateCompleteOrPendingButItsCleanup()
    {
        var inactive = new RecordingHandlers("inactive", _log, _bql) { Active = false, Pending = new PendingSize(100, 0) };
        var active = new RecordingHandlers("active", _log, _bql) { Pending = new PendingSize(7, 3) };
        var registry = new SaveStateRegistry();
        registry.RegisterLive("inactive", 0, 1, inactive);
        registry.RegisterLive("active", 0, 1, active);
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(registry, stream, _bql);

        writer.WriteHeader();
        writer.Setup();
        writer.Iterate();
        PendingSize estimate = writer.PendingEstimate();
        PendingSize exact = writer.PendingExact();
        using (_bql.Acquire())
        {
            writer.CompletePrecopy();
            writer.Cleanup();
        }

        Assert.That(estimate, Is.EqualTo(new PendingSize(7, 3)));
        Assert.That(exact, Is.EqualTo(new PendingSize(7, 3)));
        Assert.That(_log.Names().Where(n => n.StartsWith("inactive.", StringComparison.Ordinal)), Is.EqualTo(new[] { "inactive.SaveCleanup" }));
        Assert.That(_log.Names().Where(n => n.StartsWith("active.", StringComparison.Ordinal)), Is.EqualTo(new[]
        {
            "active.SaveSetup", "active.SaveLiveIterate", "active.StatePendingEstimate", "active.StatePendingExact",
            "active.SaveLiveCompletePrecopy", "active.SaveCleanup",
        }));
    }

    [Test]
    public void PendingSizesOfActiveEntriesAreSummed()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("a", 0, 1, new RecordingHandlers("a", _log, _bql) { Pending = new PendingSize(10, 1) });
        registry.RegisterLive("b", 0, 1, new RecordingHandlers("b", _log, _bql) { Pending = new PendingSize(20, 2) });
        registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice());
        using var stream = new MigrationStreamWriter(new MemoryStream());

        PendingSize total = Writer(registry, stream, _bql).PendingExact();

        Assert.That(total, Is.EqualTo(new PendingSize(30, 3)));
    }

    [Test]
    public void IsActiveIterateFalseSkipsOnlyIteration()
    {
        var handlers = new RecordingHandlers("noiter", _log, _bql) { ActiveIterate = false };
        var registry = new SaveStateRegistry();
        registry.RegisterLive("noiter", 0, 1, handlers);

        byte[] bytes = SavevmHarness.Save(registry, bql: _bql);

        Assert.That(_log.Names(), Is.EqualTo(new[] { "noiter.SaveSetup", "noiter.SaveLiveCompletePrecopy", "noiter.SaveCleanup" }));
        Assert.That(
            SavevmHarness.ScanSections(bytes, (_, r) => SavevmHarness.SkipRecordedBody(r)).Select(s => s.Type),
            Is.EqualTo(new[] { SectionType.Start, SectionType.End }));
    }

    [Test]
    public void SetupWritesStartSectionsOnlyForEntriesWithSaveSetup()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("iterate-only", 0, 1, new RecordingHandlers(
            "iterate-only", _log, _bql, SaveVmHandlerFeatures.SaveLiveIterate | SaveVmHandlerFeatures.SaveLiveCompletePrecopy));
        registry.RegisterLive("state-only", 0, 1, new RecordingHandlers("state-only", _log, _bql, SaveVmHandlerFeatures.SaveState));
        registry.RegisterLive("setup-only", 0, 1, new RecordingHandlers("setup-only", _log, _bql, SaveVmHandlerFeatures.SaveSetup));
        registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice());
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(registry, stream, _bql);

        writer.Setup();

        Assert.That(_log.Names(), Is.EqualTo(new[] { "setup-only.SaveSetup" }));
    }

    [Test]
    public void MasterTargetIteratesEveryEntryEachRound()
    {
        var first = new RecordingHandlers("first", _log, _bql);
        first.IterationOutcomes.Enqueue(IterationOutcome.MoreData);
        var second = new RecordingHandlers("second", _log, _bql);
        var third = new RecordingHandlers("third", _log, _bql);
        third.IterationOutcomes.Enqueue(IterationOutcome.MoreData);
        var registry = new SaveStateRegistry();
        registry.RegisterLive("first", 0, 1, first);
        registry.RegisterLive("second", 0, 1, second);
        registry.RegisterLive("third", 0, 1, third);
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(registry, stream, _bql, WireTarget.QemuMaster);

        IterationOutcome firstRound = writer.Iterate();
        IterationOutcome secondRound = writer.Iterate();

        Assert.That(firstRound, Is.EqualTo(IterationOutcome.MoreData));
        Assert.That(secondRound, Is.EqualTo(IterationOutcome.Finished));
        Assert.That(_log.Names(Iterate), Is.EqualTo(new[]
        {
            "first.SaveLiveIterate", "second.SaveLiveIterate", "third.SaveLiveIterate",
            "first.SaveLiveIterate", "second.SaveLiveIterate", "third.SaveLiveIterate",
        }));
    }

    [Test]
    public void Qemu72IterationFinishesOnlyWhenARoundReachesEveryEntry()
    {
        var first = new RecordingHandlers("first", _log, _bql);
        var second = new RecordingHandlers("second", _log, _bql);
        second.IterationOutcomes.Enqueue(IterationOutcome.MoreData);
        var registry = new SaveStateRegistry();
        registry.RegisterLive("first", 0, 1, first);
        registry.RegisterLive("second", 0, 1, second);
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(registry, stream, _bql);

        IterationOutcome firstRound = writer.Iterate();
        IterationOutcome secondRound = writer.Iterate();

        Assert.That((firstRound, secondRound), Is.EqualTo((IterationOutcome.MoreData, IterationOutcome.Finished)));
        Assert.That(_log.Names(Iterate), Is.EqualTo(new[]
        {
            "first.SaveLiveIterate", "second.SaveLiveIterate", "first.SaveLiveIterate", "second.SaveLiveIterate",
        }));
    }

    [TestCase(WireTarget.Qemu72)]
    [TestCase(WireTarget.QemuMaster)]
    public void ReachingTheRateLimitEndsTheRoundBeforeTheNextEntry(WireTarget target)
    {
        var first = new RecordingHandlers("first", _log, _bql) { PaddingBytes = 200 };
        var second = new RecordingHandlers("second", _log, _bql);
        var registry = new SaveStateRegistry();
        registry.RegisterLive("first", 0, 1, first);
        registry.RegisterLive("second", 0, 1, second);
        var transport = new MemoryStream();
        using var stream = new MigrationStreamWriter(transport, leaveOpen: true);
        SaveStateWriter writer = Writer(registry, stream, _bql, target);
        stream.RateLimitBytes = 100;
        stream.StartNewRateWindow();

        IterationOutcome limited = writer.Iterate();
        long bytesAfterLimitedRound = stream.BytesWritten;
        IterationOutcome stillLimited = writer.Iterate();

        Assert.That(limited, Is.EqualTo(IterationOutcome.MoreData), "a round cut short by the rate limit has more to do");
        Assert.That(stillLimited, Is.EqualTo(IterationOutcome.MoreData));
        Assert.That(stream.BytesWritten, Is.EqualTo(bytesAfterLimitedRound), "a round that starts over the limit writes nothing");
        Assert.That(_log.Names(Iterate), Is.EqualTo(new[] { "first.SaveLiveIterate" }));

        stream.StartNewRateWindow();
        IterationOutcome afterNewWindow = writer.Iterate();

        Assert.That(afterNewWindow, Is.EqualTo(IterationOutcome.MoreData), "first wrote 200 bytes again, over the limit");
        Assert.That(_log.Names(Iterate), Is.EqualTo(new[] { "first.SaveLiveIterate", "first.SaveLiveIterate" }));
    }

    [Test]
    public void UnderTheRateLimitEveryEntryIterates()
    {
        var first = new RecordingHandlers("first", _log, _bql) { PaddingBytes = 10 };
        var second = new RecordingHandlers("second", _log, _bql);
        var registry = new SaveStateRegistry();
        registry.RegisterLive("first", 0, 1, first);
        registry.RegisterLive("second", 0, 1, second);
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(registry, stream, _bql);
        stream.RateLimitBytes = 1000;
        stream.StartNewRateWindow();

        Assert.That(writer.Iterate(), Is.EqualTo(IterationOutcome.Finished));
        Assert.That(_log.Names(Iterate), Is.EqualTo(new[] { "first.SaveLiveIterate", "second.SaveLiveIterate" }));
    }

    [Test]
    public void Qemu72RunsHeaderAndSetupWithoutTheBigLockAndCompletionAndCleanupWithIt()
    {
        var scenario = new Scenario(_log, _bql);
        int migrationThreadId = 0;
        Exception? migrationThreadFailure = null;
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(scenario.Registry, stream, _bql);
        var migrationThread = new Thread(() =>
        {
            try
            {
                migrationThreadId = Environment.CurrentManagedThreadId;
                writer.WriteHeader();
                writer.Setup();
                while (writer.Iterate() == IterationOutcome.MoreData)
                {
                }

                using (_bql.Acquire())
                {
                    writer.CompletePrecopy();
                }
            }
            catch (Exception error)
            {
                migrationThreadFailure = error;
            }
        })
        { Name = "migration" };

        migrationThread.Start();
        migrationThread.Join();
        using (_bql.Acquire())
        {
            writer.Cleanup();
        }

        Assert.That(migrationThreadFailure, Is.Null);
        IReadOnlyList<HandlerCall> calls = _log.Calls;
        Assert.Multiple(() =>
        {
            foreach (HandlerCall call in calls.Where(c => c.Callback is Setup or Iterate))
            {
                Assert.That((call.BigLockHeld, call.ThreadId), Is.EqualTo((false, migrationThreadId)), call.Name);
            }

            foreach (HandlerCall call in calls.Where(c => c.Callback is Complete or State))
            {
                Assert.That((call.BigLockHeld, call.ThreadId), Is.EqualTo((true, migrationThreadId)), call.Name);
            }

            foreach (HandlerCall call in calls.Where(c => c.Callback is Cleanup))
            {
                Assert.That((call.BigLockHeld, call.ThreadId), Is.EqualTo((true, Environment.CurrentManagedThreadId)), call.Name);
            }
        });
        Assert.That(calls.Select(c => c.Callback).Distinct(), Is.EquivalentTo(new[] { Setup, Iterate, Complete, State, Cleanup }));
    }

    [Test]
    public void MasterRunsHeaderAndSetupWithTheBigLock()
    {
        var handlers = new RecordingHandlers("ram", _log, _bql);
        var registry = new SaveStateRegistry();
        registry.RegisterLive("ram", 0, 4, handlers);
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(registry, stream, _bql, WireTarget.QemuMaster);

        using (_bql.Acquire())
        {
            writer.WriteHeader();
            writer.Setup();
        }

        Assert.That(_log.Calls.Single().BigLockHeld, Is.True);
        Assert.That(() => writer.Setup(), Throws.TypeOf<BigLockAssertionException>(), "master setup without the lock");
        Assert.That(() => writer.WriteHeader(), Throws.TypeOf<BigLockAssertionException>(), "master header without the lock");
    }

    [Test]
    public void Qemu72HeaderAndSetupWithTheBigLockHeldThrow()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("ram", 0, 4, new RecordingHandlers("ram", _log, _bql));
        var transport = new MemoryStream();
        using var stream = new MigrationStreamWriter(transport, leaveOpen: true);
        SaveStateWriter writer = Writer(registry, stream, _bql);

        using (_bql.Acquire())
        {
            Assert.That(() => writer.WriteHeader(), Throws.TypeOf<BigLockAssertionException>());
            Assert.That(() => writer.Setup(), Throws.TypeOf<BigLockAssertionException>());
        }

        stream.Flush();
        Assert.That(transport.Length, Is.Zero, "nothing is written before the assertion");
        Assert.That(_log.Calls, Is.Empty);
    }

    [Test]
    public void CompletePrecopyWithoutTheBigLockThrows()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("ram", 0, 4, new RecordingHandlers("ram", _log, _bql));
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(registry, stream, _bql);

        Assert.That(() => writer.CompletePrecopy(), Throws.TypeOf<BigLockAssertionException>());
        Assert.That(() => writer.Cleanup(), Throws.TypeOf<BigLockAssertionException>());
        Assert.That(_log.Calls, Is.Empty);
    }

    [Test]
    public void CleanupRunsForEveryEntryEvenWhenOneThrows()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("first", 0, 1, new ThrowingHandlers());
        registry.RegisterLive("second", 0, 1, new RecordingHandlers("second", _log, _bql) { Active = false });
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(registry, stream, _bql);

        using (_bql.Acquire())
        {
            Assert.That(() => writer.Cleanup(), Throws.Nothing);
        }

        Assert.That(_log.Names(), Is.EqualTo(new[] { "second.SaveCleanup" }));
    }

    [Test]
    public void AFailingSetupNamesTheSectionAndSetsTheStreamError()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("ram", 0, 4, new RecordingHandlers("ram", _log, _bql));
        registry.RegisterLive("broken", 0, 1, new ThrowingHandlers());
        var later = new RecordingHandlers("later", _log, _bql);
        registry.RegisterLive("later", 0, 1, later);
        using var stream = new MigrationStreamWriter(new MemoryStream());
        SaveStateWriter writer = Writer(registry, stream, _bql);

        var error = Assert.Throws<MigrationStreamException>(() => writer.Setup())!;

        Assert.That(error.Message, Does.StartWith("failed to save SaveStateEntry with id(name): 1(broken): save_setup: setup refused"));
        Assert.That(error.InnerException, Is.TypeOf<InvalidOperationException>());
        Assert.That(stream.HasError, Is.True);
        Assert.That(_log.Names(), Is.EqualTo(new[] { "ram.SaveSetup" }), "setup stops at the failing entry");
    }

    /// <summary>Live handlers whose setup and cleanup both throw.</summary>
    private sealed class ThrowingHandlers : ISaveVmHandlers
    {
        public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live;

        public void SaveSetup(MigrationStreamWriter stream) => throw new InvalidOperationException("setup refused");

        public void SaveCleanup() => throw new InvalidOperationException("cleanup refused");

        public void LoadState(MigrationStreamReader stream, int versionId) => throw new NotSupportedException();
    }
}
