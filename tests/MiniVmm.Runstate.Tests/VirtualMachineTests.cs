namespace MiniVmm.Runstate.Tests;

[TestFixture]
public sealed class VirtualMachineTests
{
    private static readonly DateTimeOffset FixedNow = new(2024, 5, 6, 7, 8, 9, 123, TimeSpan.Zero);

    private FixedTimeProvider _time = null!;
    private CallRecorder _recorder = null!;
    private List<VmEvent> _events = null!;

    [SetUp]
    public void SetUp()
    {
        _time = new FixedTimeProvider(FixedNow);
        _recorder = new CallRecorder();
        _events = [];
    }

    private VirtualMachine CreateVm(RunState initial = RunState.Prelaunch, RunStateTransitionTable? table = null)
    {
        var vm = new VirtualMachine(_time, initial, table);
        vm.StateChangeHandlers.Register(_recorder.Callback("handler"), prepare: _recorder.Callback("prepare"));
        vm.Events.Subscribe(e => { _events.Add(e); _recorder.Add($"event {e.Name}"); });
        return vm;
    }

    [Test]
    public void ANewVmStartsInPrelaunchWithQemuMastersTable()
    {
        var vm = new VirtualMachine();
        Assert.Multiple(() =>
        {
            Assert.That(vm.State, Is.EqualTo(RunState.Prelaunch));
            Assert.That(vm.Transitions, Is.SameAs(RunStateTransitionTable.Master));
            Assert.That(vm.Time, Is.SameAs(TimeProvider.System));
            Assert.That(vm.IsRunning, Is.False);
            Assert.That(vm.IsLive, Is.False);
            Assert.That(vm.Autostart, Is.True);
        });
    }

    [Test]
    public void StartFromPrelaunchEmitsResumeBeforeNotifyingHandlersWithRunning()
    {
        VirtualMachine vm = CreateVm();

        VmStateChangeResult result = vm.Locked(v => v.Start());

        Assert.That(vm.State, Is.EqualTo(RunState.Running));
        Assert.That(vm.IsRunning, Is.True);
        Assert.That(result.Changed, Is.True);
        Assert.That(result.Succeeded, Is.True);
        Assert.That(_recorder.Calls, Is.EqualTo(new[]
        {
            "event RESUME", "prepare(True, running)", "handler(True, running)",
        }));
    }

    [Test]
    public void HandlersSeeTheNewStateAlreadySet()
    {
        VirtualMachine vm = CreateVm();
        var seen = new List<RunState>();
        vm.StateChangeHandlers.Register((_, _) => seen.Add(vm.State));

        vm.Locked(v => v.Start());
        vm.Locked(v => v.Stop(RunState.Paused));

        Assert.That(seen, Is.EqualTo(new[] { RunState.Running, RunState.Paused }));
    }

    [Test]
    public void StartWhenRunningChangesNothing()
    {
        VirtualMachine vm = CreateVm(RunState.Running);

        VmStateChangeResult result = vm.Locked(v => v.Start());

        Assert.That(result, Is.SameAs(VmStateChangeResult.Unchanged));
        Assert.That(vm.State, Is.EqualTo(RunState.Running));
        Assert.That(_recorder.Calls, Is.Empty);
    }

    [Test]
    public void StopWhenRunningPausesNotifiesHandlersThenEmitsStop()
    {
        VirtualMachine vm = CreateVm(RunState.Running);

        VmStateChangeResult result = vm.Locked(v => v.Stop(RunState.Paused));

        Assert.That(vm.State, Is.EqualTo(RunState.Paused));
        Assert.That(result.Changed, Is.True);
        Assert.That(result.Succeeded, Is.True);
        Assert.That(_recorder.Calls, Is.EqualTo(new[]
        {
            "prepare(False, paused)", "handler(False, paused)", "event STOP",
        }));
    }

    [Test]
    public void StopIntoFinishMigratePassesFinishMigrateToHandlers()
    {
        VirtualMachine vm = CreateVm(RunState.Running);

        vm.Locked(v => v.Stop(RunState.FinishMigrate));

        Assert.That(vm.State, Is.EqualTo(RunState.FinishMigrate));
        Assert.That(_recorder.Calls, Does.Contain("handler(False, finish-migrate)"));
    }

    [TestCase(RunState.Prelaunch)]
    [TestCase(RunState.Paused)]
    [TestCase(RunState.FinishMigrate)]
    [TestCase(RunState.InMigrate)]
    [TestCase(RunState.Shutdown)]
    [TestCase(RunState.PostMigrate)]
    public void StopWhenNotLiveChangesNothing(RunState initial)
    {
        VirtualMachine vm = CreateVm(initial);

        VmStateChangeResult result = vm.Locked(v => v.Stop(RunState.Paused));

        Assert.That(result, Is.SameAs(VmStateChangeResult.Unchanged));
        Assert.That(vm.State, Is.EqualTo(initial));
        Assert.That(_recorder.Calls, Is.Empty);
    }

    [Test]
    public void StopForceStateFromRunningBehavesAsStop()
    {
        VirtualMachine vm = CreateVm(RunState.Running);

        VmStateChangeResult result = vm.Locked(v => v.StopForceState(RunState.FinishMigrate));

        Assert.That(vm.State, Is.EqualTo(RunState.FinishMigrate));
        Assert.That(result.Changed, Is.True);
        Assert.That(_recorder.Calls, Is.EqualTo(new[]
        {
            "prepare(False, finish-migrate)", "handler(False, finish-migrate)", "event STOP",
        }));
    }

    [Test]
    public void StopForceStateFromPrelaunchOnlyChangesTheState()
    {
        VirtualMachine vm = CreateVm();

        VmStateChangeResult result = vm.Locked(v => v.StopForceState(RunState.FinishMigrate));

        Assert.That(vm.State, Is.EqualTo(RunState.FinishMigrate));
        Assert.That(result.Changed, Is.True);
        Assert.That(result.Succeeded, Is.True);
        Assert.That(_recorder.Calls, Is.Empty);
    }

    [Test]
    public void StopForceStateIntoTheCurrentStoppedStateIsUnchanged()
    {
        VirtualMachine vm = CreateVm(RunState.Paused);

        VmStateChangeResult result = vm.Locked(v => v.StopForceState(RunState.Paused));

        Assert.That(result.Changed, Is.False);
        Assert.That(vm.State, Is.EqualTo(RunState.Paused));
        Assert.That(_recorder.Calls, Is.Empty);
    }

    [Test]
    public void StopForceStateRejectsAForbiddenTransitionOfAStoppedVm()
    {
        VirtualMachine vm = CreateVm(RunState.PostMigrate);

        Assert.That(
            () => vm.Locked(v => v.StopForceState(RunState.Paused)),
            Throws.TypeOf<InvalidRunStateTransitionException>());
        Assert.That(vm.State, Is.EqualTo(RunState.PostMigrate));
    }

    [Test]
    public void StopFromSuspendedNotifiesAndAStartResumesIntoSuspended()
    {
        VirtualMachine vm = CreateVm(RunState.Suspended);
        Assert.That(vm.IsLive, Is.True);
        Assert.That(vm.IsRunning, Is.False);

        VmStateChangeResult stop = vm.Locked(v => v.Stop(RunState.Paused));
        Assert.That(stop.Changed, Is.True);
        Assert.That(vm.State, Is.EqualTo(RunState.Paused));
        Assert.That(_recorder.Calls, Is.EqualTo(new[]
        {
            "prepare(False, paused)", "handler(False, paused)", "event STOP",
        }));

        _recorder.Clear();
        VmStateChangeResult start = vm.Locked(v => v.Start());
        Assert.That(start.Changed, Is.True);
        Assert.That(vm.State, Is.EqualTo(RunState.Suspended));
        Assert.That(_recorder.Calls, Is.EqualTo(new[]
        {
            "event RESUME", "prepare(True, suspended)", "handler(True, suspended)",
        }));
    }

    [Test]
    public void TheSuspendedMemoryLastsForOneStartOnly()
    {
        VirtualMachine vm = CreateVm(RunState.Suspended);
        vm.Locked(v => v.Stop(RunState.Paused));
        vm.Locked(v => v.Start());
        Assert.That(vm.State, Is.EqualTo(RunState.Suspended));

        vm.Locked(v => v.SetRunState(RunState.Running)); // the guest wakes up
        vm.Locked(v => v.Stop(RunState.Paused));
        vm.Locked(v => v.Start());

        Assert.That(vm.State, Is.EqualTo(RunState.Running));
    }

    [Test]
    public void ARejectedStopOfASuspendedVmLeavesNoTrace()
    {
        VirtualMachine reference = CreateVm(RunState.Suspended);
        reference.Locked(v => v.Start());

        VirtualMachine vm = CreateVm(RunState.Suspended);
        Assert.That(
            () => vm.Locked(v => v.Stop(RunState.Debug)),
            Throws.TypeOf<InvalidRunStateTransitionException>());
        Assert.That(vm.State, Is.EqualTo(RunState.Suspended));
        vm.Locked(v => v.Start());

        Assert.That(vm.State, Is.EqualTo(reference.State), "the rejected stop changed what a later start does");
    }

    [Test]
    public void StartIntoAForbiddenStateThrowsBeforeAnythingHappens()
    {
        VirtualMachine vm = CreateVm(RunState.InternalError);

        Assert.That(
            () => vm.Locked(v => v.Start()),
            Throws.TypeOf<InvalidRunStateTransitionException>()
                .With.Message.EqualTo("invalid runstate transition: 'internal-error' -> 'running'"));
        Assert.That(vm.State, Is.EqualTo(RunState.InternalError));
        Assert.That(_recorder.Calls, Is.Empty);
    }

    [Test]
    public void StopIntoAForbiddenStateThrowsBeforeAnythingHappens()
    {
        VirtualMachine vm = CreateVm(RunState.Running);

        Assert.That(
            () => vm.Locked(v => v.Stop(RunState.Prelaunch)),
            Throws.TypeOf<InvalidRunStateTransitionException>()
                .With.Message.EqualTo("invalid runstate transition: 'running' -> 'prelaunch'"));
        Assert.That(vm.State, Is.EqualTo(RunState.Running));
        Assert.That(_recorder.Calls, Is.Empty);
    }

    [Test]
    public void SetRunStateMovesWithoutNotifyingAnyone()
    {
        VirtualMachine vm = CreateVm();

        vm.Locked(v => v.SetRunState(RunState.InMigrate));

        Assert.That(vm.State, Is.EqualTo(RunState.InMigrate));
        Assert.That(_recorder.Calls, Is.Empty);
    }

    [Test]
    public void SetRunStateRejectsAForbiddenTransitionAndKeepsTheState()
    {
        VirtualMachine vm = CreateVm();

        var thrown = Assert.Throws<InvalidRunStateTransitionException>(
            () => vm.Locked(v => v.SetRunState(RunState.Paused)));

        Assert.That(thrown!.Message, Is.EqualTo("invalid runstate transition: 'prelaunch' -> 'paused'"));
        Assert.That(thrown.From, Is.EqualTo(RunState.Prelaunch));
        Assert.That(thrown.To, Is.EqualTo(RunState.Paused));
        Assert.That(vm.State, Is.EqualTo(RunState.Prelaunch));
        Assert.That(_recorder.Calls, Is.Empty);
    }

    [Test]
    public void SetRunStateFollowsTheVmsTable()
    {
        VirtualMachine qemu72 = CreateVm(RunState.Paused, RunStateTransitionTable.Qemu72);
        VirtualMachine master = CreateVm(RunState.Paused, RunStateTransitionTable.Master);

        Assert.That(
            () => qemu72.Locked(v => v.SetRunState(RunState.Suspended)),
            Throws.TypeOf<InvalidRunStateTransitionException>()
                .With.Message.EqualTo("invalid runstate transition: 'paused' -> 'suspended'"));
        master.Locked(v => v.SetRunState(RunState.Suspended));

        Assert.That(qemu72.State, Is.EqualTo(RunState.Paused));
        Assert.That(master.State, Is.EqualTo(RunState.Suspended));
    }

    [TestCaseSource(typeof(RunStateNames), nameof(RunStateNames.All))]
    public void SetRunStateToTheSameStateIsANoOp(RunState state)
    {
        VirtualMachine vm = CreateVm(state);

        Assert.That(() => vm.Locked(v => v.SetRunState(state)), Throws.Nothing);

        Assert.That(vm.State, Is.EqualTo(state));
        Assert.That(_recorder.Calls, Is.Empty);
    }

    [TestCaseSource(typeof(RunStateNames), nameof(RunStateNames.All))]
    public void StatePredicatesFollowTheState(RunState state)
    {
        var vm = new VirtualMachine(initial: state);

        Assert.Multiple(() =>
        {
            Assert.That(vm.NeedsReset, Is.EqualTo(state is RunState.InternalError or RunState.Shutdown), "NeedsReset");
            Assert.That(vm.IsRunning, Is.EqualTo(state == RunState.Running), "IsRunning");
            Assert.That(vm.IsLive, Is.EqualTo(state is RunState.Running or RunState.Suspended), "IsLive");
        });
    }

    [Test]
    public void NeedsResetAfterAnInternalErrorOrAShutdown()
    {
        VirtualMachine crashed = CreateVm(RunState.Running);
        VirtualMachine shutDown = CreateVm(RunState.Running);
        Assert.That(crashed.NeedsReset, Is.False);

        crashed.Locked(v => v.Stop(RunState.InternalError));
        shutDown.Locked(v => v.Stop(RunState.Shutdown));

        Assert.That(crashed.NeedsReset, Is.True);
        Assert.That(shutDown.NeedsReset, Is.True);
    }

    [Test]
    public void EventTimestampsComeFromTheGivenTimeProvider()
    {
        VirtualMachine vm = CreateVm();

        vm.Locked(v => v.Start());
        vm.Locked(v => v.Stop(RunState.Paused));

        Assert.That(_events.Select(e => e.Name), Is.EqualTo(new[] { "RESUME", "STOP" }));
        Assert.That(_events.Select(e => e.Timestamp), Is.All.EqualTo(FixedNow));
        Assert.That(_events.Select(e => e.Data), Is.All.Null);
        Assert.That(vm.Time, Is.SameAs(_time));
    }

    [Test]
    public void HandlerFailuresComeBackInTheResultAndTheStateChangeStillHappens()
    {
        VirtualMachine vm = CreateVm();
        var error = new InvalidOperationException("vfio device did not start");
        vm.StateChangeHandlers.Register((_, _) => throw error, priority: -1, name: "vfio-0");
        vm.StateChangeHandlers.Register(_recorder.Mark("late"), priority: 1);

        VmStateChangeResult result = vm.Locked(v => v.Start());

        Assert.That(vm.State, Is.EqualTo(RunState.Running));
        Assert.That(result.Changed, Is.True);
        Assert.That(result.Succeeded, Is.False);
        Assert.That(result.Failures, Is.EqualTo(new[] { new VmStateChangeFailure("vfio-0", VmStateChangePhase.Change, error) }));
        Assert.That(_recorder.Calls, Is.EqualTo(new[]
        {
            "event RESUME", "prepare(True, running)", "handler(True, running)", "late",
        }));
        var thrown = Assert.Throws<VmStateChangeException>(result.ThrowIfFailed);
        Assert.That(thrown!.Message, Does.Contain("vfio-0 (change): vfio device did not start"));
    }

    [Test]
    public void APrepareFailureOnStopComesBackAndStopStillEmitsStop()
    {
        VirtualMachine vm = CreateVm(RunState.Running);
        vm.StateChangeHandlers.Register(
            _recorder.Mark("dev.change"),
            priority: 1,
            prepare: (_, _) => throw new IOException("cannot quiesce"),
            name: "dev");

        VmStateChangeResult result = vm.Locked(v => v.Stop(RunState.FinishMigrate));

        Assert.That(vm.State, Is.EqualTo(RunState.FinishMigrate));
        Assert.That(result.Failures, Has.Count.EqualTo(1));
        Assert.That(result.Failures[0].Handler, Is.EqualTo("dev"));
        Assert.That(result.Failures[0].Phase, Is.EqualTo(VmStateChangePhase.Prepare));
        Assert.That(result.Failures[0].Error, Is.TypeOf<IOException>());
        Assert.That(_recorder.Calls, Is.EqualTo(new[]
        {
            "prepare(False, finish-migrate)", "dev.change", "handler(False, finish-migrate)", "event STOP",
        }));
    }
}
