using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Testing;
using MiniVmm.Runstate;

namespace MiniVmm.Vfio.Tests.Migration;

/// <summary>
/// The conformance kit's live-handler checks over QEMU's VFIO handler with an emulated device:
/// features, a whole save and load (switchover stops the source VM, the destination's start
/// applies the state), pending drained, and every truncated body refused cleanly.
/// </summary>
[TestFixture]
public sealed class VfioConformanceTests
{
    [TestCase(VfioMigrationFlags.StopCopy)]
    [TestCase(VfioMigrationFlags.StopCopy | VfioMigrationFlags.P2P | VfioMigrationFlags.PreCopy)]
    public void The_vfio_handler_passes_the_live_handler_checks(VfioMigrationFlags flags)
    {
        var nodes = new Dictionary<ISaveVmHandlers, VfioNode>(ReferenceEqualityComparer.Instance);
        try
        {
            LiveHandlerConformance.Check(
                () => Track(VfioNode.RunningSource(VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), flags, seed: 11))),
                () => Track(VfioNode.Destination(VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), flags, seed: 22))),
                (source, destination) => Assert.That(
                    nodes[destination].Engine.LoadedStateDigest, Is.EqualTo(nodes[source].Engine.StateDigest()),
                    "the destination device's state differs from the source's"),
                new LiveHandlerConformanceOptions
                {
                    BigLock = handler => nodes[handler].Vm.Bql.Acquire(),
                    Switchover = handler => nodes[handler].Vm.StopForceState(RunState.FinishMigrate).ThrowIfFailed(),
                    AfterLoad = handler => nodes[handler].Vm.Start().ThrowIfFailed(),
                    TruncationsPerSection = 48,
                });
        }
        finally
        {
            foreach (VfioNode node in nodes.Values)
            {
                node.Dispose();
            }
        }

        ISaveVmHandlers Track(VfioNode node)
        {
            nodes[node.Handler] = node;
            return node.Handler;
        }
    }
}
