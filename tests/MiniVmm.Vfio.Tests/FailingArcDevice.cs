using MiniVmm.Native;
using MiniVmm.Vfio;

namespace MiniVmm.Vfio.Tests;

/// <summary>A STOP_COPY-only device whose arcs succeed except one chosen arc, which throws.</summary>
internal sealed class FailingArcDevice(VfioMigrationFlags flags = VfioMigrationFlags.StopCopy) : VfioDevice(flags, "failing")
{
    public string? FailingArc { get; set; }

    public Exception Failure { get; set; } = new VfioMigrationException(Errno.EIO, "injected failure");

    public int Resets { get; private set; }

    public List<string> Arcs { get; } = [];

    protected override ulong GetStopCopySize() => 0;

    protected override void ResetDevice() => Resets++;

    protected override void StopToRunning() => Arc(nameof(StopToRunning));

    protected override void RunningToStop() => Arc(nameof(RunningToStop));

    protected override IVfioSavingSource StopToStopCopy()
    {
        Arc(nameof(StopToStopCopy));
        return new EmptySource();
    }

    protected override void StopCopyToStop() => Arc(nameof(StopCopyToStop));

    protected override void StopToResuming() => Arc(nameof(StopToResuming));

    protected override void ResumingToStop(ReadOnlySpan<byte> data) => Arc(nameof(ResumingToStop));

    private void Arc(string name)
    {
        Arcs.Add(name);
        if (name == FailingArc)
        {
            throw Failure;
        }
    }

    private sealed class EmptySource : IVfioSavingSource
    {
        public ulong PendingInitialBytes => 0;

        public ulong PendingDirtyBytes => 0;

        public VfioSavingPiece ProduceNext(System.Buffers.IBufferWriter<byte> output, bool stopCopy) => VfioSavingPiece.Nothing;
    }
}
