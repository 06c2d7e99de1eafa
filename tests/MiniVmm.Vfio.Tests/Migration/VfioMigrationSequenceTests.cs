using MiniVmm.Migration.Control;
using MiniVmm.Runstate;

namespace MiniVmm.Vfio.Tests.Migration;

/// <summary>
/// The device-state requests of QEMU's VFIO handler (the sequences in <c>docs/vfio.md</c>), seen as the
/// <c>VFIO_MIGRATION</c> events of in-process migrations driven by the real migration thread
/// (<see cref="MigrationSession"/>) and loaded with the real savevm loader. The cached state
/// records requests only: RUNNING→STOP_COPY is one event even though the kernel walks several arcs.
/// </summary>
[TestFixture]
public sealed class VfioMigrationSequenceTests
{
    private const VfioMigrationFlags StopCopyOnly = VfioMigrationFlags.StopCopy;
    private const VfioMigrationFlags AllFlags = VfioMigrationFlags.StopCopy | VfioMigrationFlags.P2P | VfioMigrationFlags.PreCopy;

    private static VfioMigrationFlags Flags(bool p2pPreCopy) => p2pPreCopy ? AllFlags : StopCopyOnly;

    private static VfioNode Source(bool p2pPreCopy) =>
        VfioNode.RunningSource(VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), Flags(p2pPreCopy), seed: 11, worker: true));

    private static VfioNode Destination(bool p2pPreCopy) =>
        VfioNode.Destination(VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), Flags(p2pPreCopy), seed: 22, worker: true));

    [TestCase(false, new[] { "stop", "stop-copy", "stop" }, new[] { "resuming", "running" })]
    [TestCase(true, new[] { "pre-copy", "pre-copy-p2p", "stop-copy", "stop" }, new[] { "resuming", "running-p2p", "running" })]
    public void A_successful_migration_requests_the_table_states_on_both_sides(bool p2pPreCopy, string[] sourceStates, string[] destinationStates)
    {
        using VfioNode source = Source(p2pPreCopy);
        byte[] stream = source.MigrateToBytes(out MigrationSession session);
        Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.ToString());
        byte[] sourceDigest = source.Engine.StateDigest();

        using VfioNode destination = Destination(p2pPreCopy);
        Assert.That(destination.Engine.StateDigest(), Is.Not.EqualTo(sourceDigest), "the destination starts with another state");
        destination.LoadAndStart(new MemoryStream(stream));

        Assert.Multiple(() =>
        {
            Assert.That(source.States, Is.EqualTo(sourceStates), "source VFIO_MIGRATION device-states");
            Assert.That(source.Device.GetState(), Is.EqualTo(VfioDeviceState.Stop), "source kernel state");
            Assert.That(source.Vm.State, Is.EqualTo(RunState.PostMigrate));
            Assert.That(source.Handler.BytesTransferred, Is.GreaterThanOrEqualTo(source.Engine.StateSize));
            Assert.That(destination.States, Is.EqualTo(destinationStates), "destination VFIO_MIGRATION device-states");
            Assert.That(destination.Device.GetState(), Is.EqualTo(VfioDeviceState.Running), "destination kernel state");
            Assert.That(destination.Engine.LoadedStateDigest, Is.EqualTo(sourceDigest), "loaded state = source state at switchover");
            Assert.That(destination.Engine.DmaEnabled, Is.True, "the destination device runs");
        });
    }

    [TestCase(false, new string[0])]
    [TestCase(true, new[] { "pre-copy", "running" })]
    public void Cancel_during_precopy_puts_the_device_back_to_running(bool p2pPreCopy, string[] sourceStates)
    {
        using VfioNode source = Source(p2pPreCopy);
        var transport = new BlockingWriteStream(blockAfter: 64 * 1024);
        // A downtime limit of 0 never allows the switchover: the migration stays in precopy until cancelled.
        MigrationSession session = source.Migrate(() => transport, new MigrationParameters { MaxBandwidth = 1L << 40, DowntimeLimit = 0 });
        Assert.That(transport.Blocked.Wait(VfioNode.Wait), Is.True, "no iteration data reached the transport");
        try
        {
            // The migration thread is blocked on the transport, possibly inside the handler: reading
            // the cached state (x-query-device does) must not wait for it.
            Task<VfioDeviceState> query = Task.Run(() => source.Handler.CachedState);
            Assert.That(query.Wait(TimeSpan.FromSeconds(10)), Is.True, "reading the cached state waited for the blocked migration thread");
            Assert.That(query.Result, Is.EqualTo(p2pPreCopy ? VfioDeviceState.PreCopy : VfioDeviceState.Running));
        }
        finally
        {
            session.Cancel();
            VfioNode.WaitFinished(session);
        }

        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Cancelled), session.Error?.ToString());
            Assert.That(source.States, Is.EqualTo(sourceStates));
            Assert.That(source.Handler.CachedState, Is.EqualTo(VfioDeviceState.Running));
            Assert.That(source.Device.GetState(), Is.EqualTo(VfioDeviceState.Running));
            Assert.That(source.Vm.State, Is.EqualTo(RunState.Running));
            Assert.That(source.Engine.DmaEnabled, Is.True);
        });
    }

    [Test]
    public void Stopping_the_vm_while_a_precopy_write_is_stuck_does_not_wait_for_the_transport()
    {
        using VfioNode source = Source(p2pPreCopy: true);
        // The device's first 1 MiB DATA record goes past the 64 KiB the transport lets through:
        // the migration thread blocks writing it, inside the handler's iterate.
        var transport = new BlockingWriteStream(blockAfter: 64 * 1024);
        MigrationSession session = source.Migrate(() => transport, new MigrationParameters { MaxBandwidth = 1L << 40, DowntimeLimit = 0 });
        Assert.That(transport.Blocked.Wait(VfioNode.Wait), Is.True, "no iteration data reached the transport");
        try
        {
            // QMP stop: big lock held, the device's prepare and change-state handlers run.
            Task stop = Task.Run(() =>
            {
                using (source.Vm.Bql.Acquire())
                {
                    source.Vm.Stop(RunState.Paused).ThrowIfFailed();
                }
            });
            Assert.That(stop.Wait(TimeSpan.FromSeconds(30)), Is.True, "stop waited for the write blocked on the transport");
            Assert.That(source.Handler.CachedState, Is.EqualTo(VfioDeviceState.StopCopy), "a pause in precopy goes to STOP_COPY");
        }
        finally
        {
            transport.Dispose();
            VfioNode.WaitFinished(session);
        }

        Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
    }

    /// <summary>
    /// The transport fails once the VM stopped for the switchover. As in QEMU's
    /// <c>migration_iteration_finish</c>, the source VM restarts before save_cleanup runs, so the
    /// restart's request (RUNNING_P2P with P2P, else RUNNING) takes the device out of STOP_COPY and
    /// cleanup finds nothing to do; the kernel walks STOP_COPY→STOP on the way.
    /// </summary>
    [TestCase(false, new[] { "stop", "stop-copy", "running" })]
    [TestCase(true, new[] { "pre-copy", "pre-copy-p2p", "stop-copy", "running-p2p", "running" })]
    public void A_failure_after_the_vm_stopped_restarts_the_device(bool p2pPreCopy, string[] sourceStates)
    {
        VfioNode? source = null;
        var transport = new FailingWhenStream(() => source?.Vm.State == RunState.FinishMigrate);
        using (source = Source(p2pPreCopy))
        {
            MigrationSession session = source.Migrate(() => transport);
            VfioNode.WaitFinished(session);

            Assert.Multiple(() =>
            {
                Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
                Assert.That(transport.Failures, Is.GreaterThan(0), "the transport failed during the switchover");
                Assert.That(source.States, Is.EqualTo(sourceStates));
                Assert.That(source.Handler.CachedState, Is.EqualTo(VfioDeviceState.Running));
                Assert.That(source.Device.GetState(), Is.EqualTo(VfioDeviceState.Running));
                Assert.That(source.Vm.State, Is.EqualTo(RunState.Running));
                Assert.That(source.Engine.DmaEnabled, Is.True);
            });
        }
    }

    [TestCase(false, new[] { "stop", "stop-copy", "stop", "running" }, new[] { "resuming", "running" })]
    [TestCase(true, new[] { "running-p2p", "stop", "stop-copy", "stop", "running-p2p", "running" }, new[] { "resuming", "running-p2p", "running" })]
    public void A_snapshot_of_a_stopped_vm_to_a_file_loads_back(bool p2pPreCopy, string[] sourceStates, string[] destinationStates)
    {
        string file = Path.Combine(Path.GetTempPath(), $"minivmm-vfio-{Guid.NewGuid():N}.bin");
        try
        {
            using VfioNode source = Source(p2pPreCopy);
            using (source.Vm.Bql.Acquire())
            {
                source.Vm.Stop(RunState.Paused).ThrowIfFailed();
            }

            MigrationSession session = source.Migrate(() => new FileStream(file, FileMode.CreateNew, FileAccess.Write));
            VfioNode.WaitFinished(session);
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.ToString());
            byte[] digest = source.Engine.StateDigest();
            Assert.That(source.Device.GetState(), Is.EqualTo(VfioDeviceState.Stop));
            source.Start();

            using VfioNode destination = Destination(p2pPreCopy);
            destination.LoadAndStart(File.OpenRead(file));

            Assert.Multiple(() =>
            {
                Assert.That(source.States, Is.EqualTo(sourceStates), "source VFIO_MIGRATION device-states");
                Assert.That(source.Device.GetState(), Is.EqualTo(VfioDeviceState.Running));
                Assert.That(destination.States, Is.EqualTo(destinationStates), "destination VFIO_MIGRATION device-states");
                Assert.That(destination.Engine.LoadedStateDigest, Is.EqualTo(digest));
                Assert.That(destination.Device.GetState(), Is.EqualTo(VfioDeviceState.Running));
            });
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    public void A_failing_stop_copy_arc_fails_the_migration_resets_the_device_and_the_vm_runs_again()
    {
        var device = new FailingArcDevice { FailingArc = "StopToStopCopy" };
        using VfioNode source = VfioNode.RunningSource(device);
        source.MigrateToBytes(out MigrationSession session);

        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
            Assert.That(session.Error?.ToString(), Does.Contain("injected failure"));
            Assert.That(device.Arcs, Is.EqualTo(new[] { "RunningToStop", "StopToStopCopy" }));
            Assert.That(device.Resets, Is.EqualTo(1), "VFIO_DEVICE_RESET after the recovery to STOP failed");
            Assert.That(source.States, Is.EqualTo(new[] { "stop", "running" }), "the reset caches RUNNING; the restart then needs no ioctl");
            Assert.That(source.Handler.CachedState, Is.EqualTo(VfioDeviceState.Running));
            Assert.That(device.GetState(), Is.EqualTo(VfioDeviceState.Running));
            Assert.That(source.Vm.State, Is.EqualTo(RunState.Running));
        });
    }
}
