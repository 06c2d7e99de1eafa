namespace MiniVmm.Runstate.Tests;

[TestFixture]
public sealed class VmStateChangeHandlersTests
{
    [Test]
    public void StartRunsHandlersInAscendingPriorityAndStopInDescending()
    {
        var handlers = new VmStateChangeHandlers();
        var recorder = new CallRecorder();
        handlers.Register(recorder.Mark("p5"), priority: 5);
        handlers.Register(recorder.Mark("p-1"), priority: -1);
        handlers.Register(recorder.Mark("p0"), priority: 0);
        handlers.Register(recorder.Mark("p3"), priority: 3);
        handlers.Register(recorder.Mark("p10"), priority: 10);

        handlers.Notify(running: true, RunState.Running);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "p-1", "p0", "p3", "p5", "p10" }));

        recorder.Clear();
        handlers.Notify(running: false, RunState.Paused);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "p10", "p5", "p3", "p0", "p-1" }));
    }

    [Test]
    public void EqualPrioritiesKeepRegistrationOrderOnStartAndReverseItOnStop()
    {
        var handlers = new VmStateChangeHandlers();
        var recorder = new CallRecorder();
        handlers.Register(recorder.Mark("a1"), priority: 1);
        handlers.Register(recorder.Mark("z0"), priority: 0);
        handlers.Register(recorder.Mark("b1"), priority: 1);
        handlers.Register(recorder.Mark("y0"));
        handlers.Register(recorder.Mark("c1"), priority: 1);

        handlers.Notify(running: true, RunState.Running);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "z0", "y0", "a1", "b1", "c1" }));

        recorder.Clear();
        handlers.Notify(running: false, RunState.Paused);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "c1", "b1", "a1", "y0", "z0" }));
    }

    [Test]
    public void PrepareCallbacksAllRunBeforeAnyMainCallbackInPriorityOrder()
    {
        var handlers = new VmStateChangeHandlers();
        var recorder = new CallRecorder();
        handlers.Register(recorder.Mark("cb2"), priority: 2, prepare: recorder.Mark("prep2"));
        handlers.Register(recorder.Mark("cb1"), priority: 1, prepare: recorder.Mark("prep1"));
        handlers.Register(recorder.Mark("cb3"), priority: 3, prepare: recorder.Mark("prep3"));
        handlers.Register(recorder.Mark("plain"), priority: 2);

        handlers.Notify(running: true, RunState.Running);
        Assert.That(
            recorder.Calls,
            Is.EqualTo(new[] { "prep1", "prep2", "prep3", "cb1", "cb2", "plain", "cb3" }));

        recorder.Clear();
        handlers.Notify(running: false, RunState.Paused);
        Assert.That(
            recorder.Calls,
            Is.EqualTo(new[] { "prep3", "prep2", "prep1", "cb3", "plain", "cb2", "cb1" }));
    }

    [TestCase(true, RunState.Running)]
    [TestCase(true, RunState.Suspended)]
    [TestCase(false, RunState.FinishMigrate)]
    [TestCase(false, RunState.Paused)]
    public void PrepareAndMainCallbacksGetTheSameArguments(bool running, RunState state)
    {
        var handlers = new VmStateChangeHandlers();
        var recorder = new CallRecorder();
        handlers.Register(recorder.Callback("cb"), prepare: recorder.Callback("prep"));

        handlers.Notify(running, state);

        Assert.That(recorder.Calls, Is.EqualTo(new[]
        {
            $"prep({running}, {state.ToQapiName()})",
            $"cb({running}, {state.ToQapiName()})",
        }));
    }

    [Test]
    public void DisposingTheRegistrationRemovesTheHandlerAndASecondDisposeIsHarmless()
    {
        var handlers = new VmStateChangeHandlers();
        var recorder = new CallRecorder();
        VmStateChangeCallback shared = recorder.Mark("same");
        IDisposable first = handlers.Register(shared, prepare: recorder.Mark("prep-first"));
        handlers.Register(shared, prepare: recorder.Mark("prep-second"));
        handlers.Register(recorder.Mark("other"));
        Assert.That(handlers.Count, Is.EqualTo(3));

        first.Dispose();
        Assert.That(handlers.Count, Is.EqualTo(2));
        first.Dispose();
        Assert.That(handlers.Count, Is.EqualTo(2));

        handlers.Notify(running: true, RunState.Running);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "prep-second", "same", "other" }));
    }

    [Test]
    public void TwoRegistrationsOfTheSameDelegateAreRemovedSeparately()
    {
        var handlers = new VmStateChangeHandlers();
        var recorder = new CallRecorder();
        VmStateChangeCallback shared = recorder.Mark("same");
        IDisposable first = handlers.Register(shared, name: "dup");
        IDisposable second = handlers.Register(shared, name: "dup");

        first.Dispose();
        first.Dispose();
        handlers.Notify(running: true, RunState.Running);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "same" }));

        second.Dispose();
        recorder.Clear();
        handlers.Notify(running: true, RunState.Running);
        Assert.That(recorder.Calls, Is.Empty);
        Assert.That(handlers.Count, Is.Zero);
    }

    [Test]
    public void RegisterRejectsANullCallback()
    {
        var handlers = new VmStateChangeHandlers();
        Assert.That(() => handlers.Register(null!), Throws.ArgumentNullException);
    }

    [Test]
    public void AThrowingHandlerDoesNotStopTheOthersAndIsReported()
    {
        var handlers = new VmStateChangeHandlers();
        var recorder = new CallRecorder();
        var error = new InvalidOperationException("device refused");
        handlers.Register(recorder.Mark("a"), priority: 1, name: "a");
        handlers.Register((_, _) => { recorder.Add("broken"); throw error; }, priority: 2, name: "broken-device");
        handlers.Register(recorder.Mark("c"), priority: 3, name: "c");

        IReadOnlyList<VmStateChangeFailure> onStart = handlers.Notify(running: true, RunState.Running);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "a", "broken", "c" }));
        Assert.That(onStart, Is.EqualTo(new[] { new VmStateChangeFailure("broken-device", VmStateChangePhase.Change, error) }));

        recorder.Clear();
        IReadOnlyList<VmStateChangeFailure> onStop = handlers.Notify(running: false, RunState.Paused);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "c", "broken", "a" }));
        Assert.That(onStop, Has.Count.EqualTo(1));
        Assert.That(onStop[0].Handler, Is.EqualTo("broken-device"));
    }

    [Test]
    public void AThrowingPrepareCallbackIsReportedInThePreparePhaseAndEveryCallbackStillRuns()
    {
        var handlers = new VmStateChangeHandlers();
        var recorder = new CallRecorder();
        var error = new IOException("cannot enter running-p2p");
        handlers.Register(recorder.Mark("cb1"), priority: 1, prepare: recorder.Mark("prep1"), name: "dev1");
        handlers.Register(
            recorder.Mark("cb2"),
            priority: 2,
            prepare: (_, _) => { recorder.Add("prep2"); throw error; },
            name: "dev2");
        handlers.Register(recorder.Mark("cb3"), priority: 3, prepare: recorder.Mark("prep3"), name: "dev3");

        IReadOnlyList<VmStateChangeFailure> failures = handlers.Notify(running: false, RunState.FinishMigrate);

        Assert.That(recorder.Calls, Is.EqualTo(new[] { "prep3", "prep2", "prep1", "cb3", "cb2", "cb1" }));
        Assert.That(failures, Is.EqualTo(new[] { new VmStateChangeFailure("dev2", VmStateChangePhase.Prepare, error) }));
    }

    [Test]
    public void FailuresOfSeveralHandlersAreAllReportedInCallOrder()
    {
        var handlers = new VmStateChangeHandlers();
        handlers.Register((_, _) => throw new InvalidOperationException("one"), priority: 1, name: "first");
        handlers.Register(
            (_, _) => throw new InvalidOperationException("three"),
            priority: 2,
            prepare: (_, _) => throw new InvalidOperationException("two"),
            name: "second");

        IReadOnlyList<VmStateChangeFailure> failures = handlers.Notify(running: true, RunState.Running);

        Assert.That(
            failures.Select(f => $"{f.Handler}/{f.Phase}/{f.Error.Message}"),
            Is.EqualTo(new[] { "second/Prepare/two", "first/Change/one", "second/Change/three" }));
    }

    [Test]
    public void AnUnnamedHandlerIsStillReportedUnderSomeName()
    {
        var handlers = new VmStateChangeHandlers();
        handlers.Register((_, _) => throw new InvalidOperationException("boom"));

        IReadOnlyList<VmStateChangeFailure> failures = handlers.Notify(running: true, RunState.Running);

        Assert.That(failures, Has.Count.EqualTo(1));
        Assert.That(failures[0].Handler, Is.Not.Null.And.Not.Empty);
    }

    [Test]
    public void FailureToStringNamesHandlerPhaseAndError()
    {
        var failure = new VmStateChangeFailure("vfio-0", VmStateChangePhase.Prepare, new IOException("gone"));
        Assert.That(failure.ToString(), Is.EqualTo("vfio-0 (prepare): gone"));
        Assert.That(
            (failure with { Phase = VmStateChangePhase.Change }).ToString(),
            Is.EqualTo("vfio-0 (change): gone"));
    }

    [Test]
    public void ThrowIfFailedThrowsAnExceptionListingEveryFailure()
    {
        var first = new VmStateChangeFailure("dev-a", VmStateChangePhase.Prepare, new IOException("a broke"));
        var second = new VmStateChangeFailure("dev-b", VmStateChangePhase.Change, new InvalidOperationException("b broke"));
        var result = new VmStateChangeResult(true, [first, second]);

        Assert.That(result.Succeeded, Is.False);
        VmStateChangeException? thrown = Assert.Throws<VmStateChangeException>(result.ThrowIfFailed);
        Assert.That(thrown!.Failures, Is.EqualTo(new[] { first, second }));
        Assert.That(thrown.Message, Does.Contain("dev-a (prepare): a broke"));
        Assert.That(thrown.Message, Does.Contain("dev-b (change): b broke"));
        Assert.That(thrown.InnerExceptions, Is.EqualTo(new[] { first.Error, second.Error }));
    }

    [Test]
    public void ThrowIfFailedDoesNothingWithoutFailures()
    {
        Assert.That(VmStateChangeResult.Unchanged.Succeeded, Is.True);
        Assert.That(VmStateChangeResult.Unchanged.Changed, Is.False);
        Assert.That(VmStateChangeResult.Unchanged.ThrowIfFailed, Throws.Nothing);
        Assert.That(new VmStateChangeResult(true, []).ThrowIfFailed, Throws.Nothing);
    }

    [Test]
    public void AHandlerRegisteredDuringANotificationIsNotCalledByIt()
    {
        var handlers = new VmStateChangeHandlers();
        var recorder = new CallRecorder();
        handlers.Register((_, _) =>
        {
            recorder.Add("registering");
            handlers.Register(recorder.Mark("late"), priority: 100);
        });

        handlers.Notify(running: true, RunState.Running);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "registering" }));
        Assert.That(handlers.Count, Is.EqualTo(2));
    }
}

/// <summary>
/// Two devices that can reach each other by peer-to-peer DMA, as VFIO devices with the
/// running-p2p state: each must be quiesced (prepare pass) before any device stops or starts,
/// so no device is ever fully running while a peer it can write to is stopped.
/// </summary>
[TestFixture]
public sealed class PeerToPeerDeviceOrderTests
{
    private enum DeviceState { Stopped, RunningP2p, Running }

    private sealed class P2pDevice(string name, List<P2pDevice> all, CallRecorder recorder)
    {
        public string Name { get; } = name;

        public DeviceState State { get; private set; } = DeviceState.Stopped;

        public List<string> Violations { get; } = [];

        public void Prepare(bool running, RunState state)
        {
            recorder.Add($"{Name}.prepare");
            State = DeviceState.RunningP2p;
        }

        public void Change(bool running, RunState state)
        {
            recorder.Add($"{Name}.change");
            foreach (P2pDevice peer in all.Where(d => d != this))
            {
                DeviceState unquiesced = running ? DeviceState.Stopped : DeviceState.Running;
                if (peer.State == unquiesced)
                {
                    Violations.Add($"{Name} changed while {peer.Name} was still {peer.State}");
                }
            }

            State = running ? DeviceState.Running : DeviceState.Stopped;
        }
    }

    [Test]
    public void EveryPrepareRunsBeforeAnyDeviceChangesOnStartAndOnStop()
    {
        var vm = new VirtualMachine();
        var recorder = new CallRecorder();
        var devices = new List<P2pDevice>();
        var root = new P2pDevice("gpu-on-root-bus", devices, recorder);
        var bridged = new P2pDevice("nic-behind-bridge", devices, recorder);
        devices.AddRange([root, bridged]);
        vm.StateChangeHandlers.Register(bridged.Change, priority: 2, prepare: bridged.Prepare, name: bridged.Name);
        vm.StateChangeHandlers.Register(recorder.Mark("plain.change"), priority: 1, name: "plain");
        vm.StateChangeHandlers.Register(root.Change, priority: 1, prepare: root.Prepare, name: root.Name);

        VmStateChangeResult start = vm.Locked(v => v.Start());
        Assert.That(start.Succeeded, Is.True);
        Assert.That(recorder.Calls, Is.EqualTo(new[]
        {
            "gpu-on-root-bus.prepare", "nic-behind-bridge.prepare",
            "plain.change", "gpu-on-root-bus.change", "nic-behind-bridge.change",
        }));
        Assert.That(devices.Select(d => d.State), Is.All.EqualTo(DeviceState.Running));

        recorder.Clear();
        VmStateChangeResult stop = vm.Locked(v => v.Stop(RunState.FinishMigrate));
        Assert.That(stop.Succeeded, Is.True);
        Assert.That(recorder.Calls, Is.EqualTo(new[]
        {
            "nic-behind-bridge.prepare", "gpu-on-root-bus.prepare",
            "nic-behind-bridge.change", "gpu-on-root-bus.change", "plain.change",
        }));
        Assert.That(devices.Select(d => d.State), Is.All.EqualTo(DeviceState.Stopped));
        Assert.That(devices.SelectMany(d => d.Violations), Is.Empty);
    }
}
