using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Fuzz.Tests.Targets;

/// <summary>
/// The incoming side, exactly as <c>migrate-incoming fd:NAME</c> runs it: a fresh machine per
/// case (64 MiB of RAM, the sample device, an emulated VFIO device, a guest harness with its
/// fake peer; return-path and switchover-ack on, no <c>-S</c>), the mutated stream as the
/// passed descriptor (two-way, so PINGs get their PONGs), the load on the incoming thread and,
/// when it succeeds, the run state the stream carried — which starts the VM and so applies the
/// VFIO device's loaded state. A failed load must end in a <see cref="MigrationLoadException"/>
/// with its offset and no runtime fault inside; a hang past the case timeout is a finding.
/// </summary>
internal sealed class LoaderTarget(IReadOnlyList<FuzzSeed> seeds, string socketDirectory) : IFuzzTarget
{
    private static readonly TimeSpan LoadWait = TimeSpan.FromSeconds(20);

    public string Name => "loader";

    public IReadOnlyList<FuzzSeed> Seeds => seeds;

    public bool BigEndianLengths => true;

    public TimeSpan CaseTimeout => TimeSpan.FromSeconds(30);

    public string? LastRejection { get; private set; }

    public CaseOutcome Run(byte[] input)
    {
        LastRejection = null;
        using FuzzMachine machine = FuzzMachine.Create(MachineShape.Everything, socketDirectory);
        machine.EnterIncoming(startPaused: false, MigrationCapabilities.ReturnPath, MigrationCapabilities.SwitchoverAck);
        var transport = new LoopbackTransport(input);
        machine.Migration.PassedDescriptors = _ => transport;
        IncomingMigration incoming;
        using (machine.Vm.Bql.Acquire())
        {
            incoming = machine.Migration.StartIncoming("fd:fuzz");
        }

        if (!incoming.Finished.Wait(LoadWait))
        {
            throw new FuzzFinding($"the incoming migration did not finish within {LoadWait.TotalSeconds} s ({incoming.BytesReceived} bytes read, status {incoming.Status})");
        }

        switch (incoming.Status)
        {
            case MigrationStatus.Completed:
                RunState state = machine.Vm.State;
                if (state is RunState.InMigrate)
                {
                    throw new FuzzFinding("the load completed but the VM stayed in inmigrate");
                }

                return CaseOutcome.Accepted;
            case MigrationStatus.Failed:
                Exception error = incoming.Error ?? throw new FuzzFinding("the load failed without an error");
                ErrorRules.RequireStreamError(error, "the load", typeof(MigrationLoadException), typeof(VmStartRefusedException), typeof(VmStateChangeException));
                LastRejection = error.Message;
                return CaseOutcome.Rejected;
            default:
                throw new FuzzFinding($"the incoming migration finished in status {incoming.Status}");
        }
    }

    public void Dispose()
    {
    }

    /// <summary>The source's end of a migration connection: reads the input, swallows what the destination sends back.</summary>
    private sealed class LoopbackTransport(byte[] input) : Stream
    {
        private readonly MemoryStream _input = new(input, writable: false);
        private long _returned;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => _input.Read(buffer);

        public override void Write(byte[] buffer, int offset, int count) => Interlocked.Add(ref _returned, count);

        public override void Write(ReadOnlySpan<byte> buffer) => Interlocked.Add(ref _returned, buffer.Length);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
