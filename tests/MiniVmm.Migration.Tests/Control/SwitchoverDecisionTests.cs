using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Control;

/// <summary>
/// <see cref="MigrationSession.SwitchoverDecision"/> and <see cref="IMigrationActivityNotes"/>
/// during real in-process migrations between two coordinators over a UNIX socket.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SwitchoverDecisionTests
{
    private const long RamSize = 32L << 20;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private readonly List<IDisposable> _owned = [];
    private string _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = Directory.CreateTempSubdirectory("minivmm-sd-").FullName;

    [TearDown]
    public void CleanUp()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        _owned.Clear();
        Directory.Delete(_directory, recursive: true);
    }

    [Test]
    public void The_decision_is_taken_before_the_vm_stops_and_holds_the_figures_it_was_taken_on()
    {
        (VirtualMachine sourceVm, MigrationCoordinator source) = Machine(RunState.Running);
        (VirtualMachine destinationVm, MigrationCoordinator destination) = Machine(RunState.InMigrate);
        string uri = $"unix:{Path.Combine(_directory, "m.sock")}";
        IncomingMigration incoming = Locked(destinationVm, () => destination.StartIncoming(uri));
        Locked(sourceVm, () => source.SetCapabilities([(MigrationCapabilities.PauseBeforeSwitchover, true)]));

        MigrationSession session = Locked(sourceVm, () =>
        {
            source.SetParameters(new JsonObject { ["max-bandwidth"] = 64L << 20, ["downtime-limit"] = 250L });
            return source.StartOutgoing(uri);
        });
        Assert.That(SpinWait.SpinUntil(() => session.Status == MigrationStatus.PreSwitchover, Wait), Is.True);
        MigrationSwitchoverDecision? whilePaused = session.SwitchoverDecision;
        ((IMigrationActivityNotes)source).Note("harness PAUSE", "ok after 0.5 ms");
        Locked(sourceVm, () => source.Outgoing!.Continue(MigrationStatus.PreSwitchover));
        Assert.That(session.Finished.Wait(Wait) && incoming.Finished.Wait(Wait), Is.True);
        ((IMigrationActivityNotes)source).Note("after the end");

        MigrationSwitchoverDecision decision = session.SwitchoverDecision!;
        MigrationTimelineEvent stop = session.Timeline.Events.First(e => e.Kind == MigrationTimelineEventKind.Phase && e.Name == "stop");
        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.Message);
            Assert.That(whilePaused, Is.SameAs(decision), "known once decided, before the switchover completes");
            Assert.That(decision.TimeMs, Is.LessThanOrEqualTo(stop.TimeMs), "decided, then stopped");
            Assert.That(decision.DowntimeLimitMs, Is.EqualTo(250));
            Assert.That(decision.Pass, Is.EqualTo(session.Snapshot().Passes).Or.EqualTo(session.Snapshot().Passes - 1));
            Assert.That(decision.Reason, Is.EqualTo(decision.PendingBytes == 0 ? SwitchoverReason.NothingPending : SwitchoverReason.PendingBelowThreshold));
            Assert.That(decision.PendingBytes, Is.LessThanOrEqualTo(decision.ThresholdBytes).Or.EqualTo(0));
            Assert.That(decision.SwitchoverAckRequired, Is.False, "switchover-ack was off");
            Assert.That(decision.CpuThrottlePercentage, Is.Zero);
            Assert.That(session.Timeline.Events.Where(e => e.Kind == MigrationTimelineEventKind.Activity).Select(e => (e.Name, e.Detail)),
                Is.EqualTo(new[] { ("harness PAUSE", (string?)"ok after 0.5 ms") }), "a note while it ran is kept; one after the end is not");
        });
    }

    [Test]
    public void A_migration_that_fails_before_the_switchover_has_no_decision()
    {
        (VirtualMachine vm, MigrationCoordinator source) = Machine(RunState.Running);

        MigrationSession session = Locked(vm, () => source.StartOutgoing($"unix:{Path.Combine(_directory, "nobody.sock")}"));
        Assert.That(session.Finished.Wait(Wait), Is.True);

        Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
        Assert.That(session.SwitchoverDecision, Is.Null);
    }

    private (VirtualMachine Vm, MigrationCoordinator Coordinator) Machine(RunState state)
    {
        var services = new ServiceCollection();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(new VirtualMachine(TimeProvider.System, state == RunState.Running ? RunState.Prelaunch : state));
        services.AddMachineNone(RamSize);
        ServiceProvider provider = services.BuildServiceProvider();
        _owned.Add(provider);
        VirtualMachine vm = provider.GetRequiredService<VirtualMachine>();
        var coordinator = new MigrationCoordinator(
            provider.GetRequiredService<SaveStateRegistry>(), vm, provider.GetRequiredService<SavevmOptions>(),
            provider.GetRequiredService<GlobalState>(), provider.GetRequiredService<IRamTransferStatistics>());
        _owned.Add(coordinator);
        if (state == RunState.Running)
        {
            byte[] data = new byte[4 << 20];
            Array.Fill(data, (byte)0x5a);
            provider.GetRequiredService<GuestMemory>().Write(0, data);
            using (vm.Bql.Acquire())
            {
                vm.Start().ThrowIfFailed();
            }
        }

        return (vm, coordinator);
    }

    private static T Locked<T>(VirtualMachine vm, Func<T> action)
    {
        using (vm.Bql.Acquire())
        {
            return action();
        }
    }

    private static void Locked(VirtualMachine vm, Action action)
    {
        using (vm.Bql.Acquire())
        {
            action();
        }
    }
}
