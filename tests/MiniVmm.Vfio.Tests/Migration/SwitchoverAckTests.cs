using MiniVmm.Migration.Control;
using MiniVmm.Runstate;

namespace MiniVmm.Vfio.Tests.Migration;

/// <summary>
/// switchover-ack (<c>docs/vfio.md</c>) end to end in one process: two VMs with their own migration
/// coordinators (what QMP drives), PRE_COPY VFIO devices, the real migration thread and the
/// real incoming side, over sockets whose destination → source direction can be held back.
/// </summary>
[TestFixture]
public sealed class SwitchoverAckTests
{
    private const VfioMigrationFlags AllFlags = VfioMigrationFlags.StopCopy | VfioMigrationFlags.P2P | VfioMigrationFlags.PreCopy;
    private static readonly (string, bool)[] AckCapabilities =
        [(MigrationCapabilities.ReturnPath, true), (MigrationCapabilities.SwitchoverAck, true), (MigrationCapabilities.Events, true)];

    private VfioNode _source = null!;
    private VfioNode _destination = null!;
    private GatedRelay _relay = null!;

    [SetUp]
    public void CreateNodes()
    {
        _source = new VfioNode(
            VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), AllFlags, seed: 11, worker: true, sizeMiB: 2),
            RunState.Prelaunch, coordinated: true);
        _destination = new VfioNode(
            VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), AllFlags, seed: 22, worker: true, sizeMiB: 2),
            RunState.InMigrate, configSeed: 2, coordinated: true);
        _relay = new GatedRelay();
    }

    [TearDown]
    public void DisposeNodes()
    {
        _relay.Dispose();
        _source.Dispose();
        _destination.Dispose();
    }

    private MigrationSession StartMigration(IEnumerable<(string, bool)> sourceCapabilities, IEnumerable<(string, bool)> destinationCapabilities)
    {
        _destination.Coordinator!.SetCapabilities(destinationCapabilities);
        _destination.Coordinator.PassedDescriptors = _ => _relay.DestinationEnd;
        _destination.Coordinator.StartIncoming("fd:in");

        _source.Coordinator!.SetCapabilities(sourceCapabilities);
        _source.Coordinator.SetParameters(new() { ["max-bandwidth"] = 1L << 40 });
        _source.Coordinator.PassedDescriptors = _ => _relay.SourceEnd;
        using (_source.Vm.Bql.Acquire())
        {
            return _source.Coordinator.StartOutgoing("fd:out");
        }
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + VfioNode.Wait;
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"timed out waiting until {what}");
            Thread.Sleep(5);
        }
    }

    [Test]
    public void The_source_keeps_iterating_until_the_ack_arrives_then_switches_over()
    {
        _source.Start();
        MigrationSession session = StartMigration(AckCapabilities, AckCapabilities);
        IncomingMigration incoming = _destination.Coordinator!.Incoming!;

        // The destination acks once the device's INIT_DATA_SENT is loaded; the relay holds the ack.
        // The switchover threshold is 0 until the first 100 ms bandwidth window closes (mbps is
        // set at the same moment); from then on the few MiB pending are far below it, so only
        // the missing ack keeps the source iterating.
        WaitUntil(() => incoming.SwitchoverAcked, "the destination sent SWITCHOVER_ACK");
        WaitUntil(() => session.Snapshot().Mbps > 0, "the first bandwidth window closed");
        long rounds = _source.Ballast.Iterations;
        WaitUntil(() => _source.Ballast.Iterations >= rounds + 20, "the source ran 20 more rounds");

        Assert.Multiple(() =>
        {
            Assert.That(_relay.HeldBytes, Is.GreaterThanOrEqualTo(8 + 4), "PONG and SWITCHOVER_ACK are held at the gate");
            Assert.That(session.SwitchoverAcked, Is.False);
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Active), "no switchover without the ack");
            Assert.That(_source.Vm.State, Is.EqualTo(RunState.Running));
            Assert.That(_source.Handler.CachedState, Is.EqualTo(VfioDeviceState.PreCopy));
            Assert.That(incoming.Status, Is.EqualTo(MigrationStatus.Active));
        });

        _relay.Release();
        VfioNode.WaitFinished(session);
        Assert.That(incoming.Finished.Wait(VfioNode.Wait), Is.True);

        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.ToString());
            Assert.That(session.SwitchoverAcked, Is.True);
            Assert.That(_source.Vm.State, Is.EqualTo(RunState.PostMigrate));
            Assert.That(incoming.Status, Is.EqualTo(MigrationStatus.Completed), incoming.Error?.ToString());
            Assert.That(_destination.Vm.State, Is.EqualTo(RunState.Running));
            Assert.That(_destination.Engine.LoadedStateDigest, Is.EqualTo(_source.Engine.StateDigest()), "device state moved");
        });
    }

    [Test]
    public void A_device_behind_a_section_that_always_has_data_still_gets_its_initial_data_out()
    {
        // RAM of a busy guest comes first and never runs out; QEMU 7.2's rule (stop each round
        // at the first entry with data left) would never reach the device, so no ack would come.
        _source.Dispose();
        _destination.Dispose();
        _source = new VfioNode(
            VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), AllFlags, seed: 11, worker: true, sizeMiB: 2),
            RunState.Prelaunch, coordinated: true, ballastFirst: true);
        _destination = new VfioNode(
            VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), AllFlags, seed: 22, worker: true, sizeMiB: 2),
            RunState.InMigrate, configSeed: 2, coordinated: true, ballastFirst: true);
        _source.Start();
        _relay.Release();

        MigrationSession session = StartMigration(AckCapabilities, AckCapabilities);
        VfioNode.WaitFinished(session);

        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.ToString());
            Assert.That(session.SwitchoverAcked, Is.True);
            Assert.That(_destination.Engine.LoadedStateDigest, Is.EqualTo(_source.Engine.StateDigest()));
        });
    }

    [Test]
    public void A_stopped_source_does_not_wait_for_the_ack()
    {
        // Prelaunch: not running, so the switchover is allowed at once (QEMU's can_switchover).
        MigrationSession session = StartMigration(AckCapabilities, AckCapabilities);
        IncomingMigration incoming = _destination.Coordinator!.Incoming!;

        // With the return path held, the source can only have switched over without the ack;
        // the destination's SHUT is held too, so the source waits in completion.
        Assert.That(incoming.Finished.Wait(VfioNode.Wait), Is.True, "the destination loaded the whole stream");
        Assert.Multiple(() =>
        {
            Assert.That(incoming.Status, Is.EqualTo(MigrationStatus.Completed), incoming.Error?.ToString());
            Assert.That(session.SwitchoverAcked, Is.False);
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Active), "completion waits for the destination's SHUT");
        });

        _relay.Release();
        VfioNode.WaitFinished(session);
        Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.ToString());
    }

    [Test]
    public void A_destination_without_switchover_ack_refuses_init_data_sent_and_the_source_runs_on()
    {
        _source.Start();
        _relay.Release();
        MigrationSession session = StartMigration(AckCapabilities, [(MigrationCapabilities.Events, true)]);
        IncomingMigration incoming = _destination.Coordinator!.Incoming!;

        VfioNode.WaitFinished(session);
        Assert.That(incoming.Finished.Wait(VfioNode.Wait), Is.True);

        Assert.Multiple(() =>
        {
            Assert.That(incoming.Status, Is.EqualTo(MigrationStatus.Failed));
            Assert.That(incoming.Error!.Message, Does.Contain("dev0/vfio: Received INIT_DATA_SENT but switchover ack is not used"));
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
            Assert.That(session.Error!.Message, Does.Contain("RP: Sibling indicated error 1"));
            Assert.That(_source.Vm.State, Is.EqualTo(RunState.Running), "the source VM runs again");
            Assert.That(_source.Handler.CachedState, Is.EqualTo(VfioDeviceState.Running));
        });
    }
}
