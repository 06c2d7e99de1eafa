using MiniVmm.Migration.Control;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Savevm;
using MiniVmm.Native;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Control;

/// <summary>
/// The source side of the return path with the real migration thread: what happens when the
/// transport cannot carry it, and when the destination goes away before its SHUT.
/// </summary>
[TestFixture]
public sealed class ReturnPathSessionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private VirtualMachine _vm = null!;
    private SaveStateRegistry _registry = null!;
    private string _directory = null!;

    [SetUp]
    public void CreateVm()
    {
        _vm = new VirtualMachine(initial: RunState.Prelaunch);
        using (_vm.Bql.Acquire())
        {
            _vm.Start().ThrowIfFailed();
        }

        _registry = new SaveStateRegistry();
        new TimerState().Register(_registry);
        _directory = Directory.CreateTempSubdirectory("minivmm-rp-").FullName;
    }

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_directory, recursive: true);

    private MigrationSession Migrate(Func<System.IO.Stream> connect)
    {
        MigrationCapabilities capabilities = MigrationCapabilities.None.With(MigrationCapabilities.ReturnPath, true);
        var session = new MigrationSession(_registry, _vm, new SavevmOptions(), new MigrationParameters(), capabilities);
        session.Start(_ => connect());
        Assert.That(session.Finished.Wait(Wait), Is.True, "the migration did not finish");
        return session;
    }

    [Test]
    public void A_one_way_transport_fails_the_migration_and_the_vm_keeps_running()
    {
        string file = Path.Combine(_directory, "snapshot");
        MigrationSession session = Migrate(() => new FileStream(file, FileMode.Create, FileAccess.Write));

        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
            Assert.That(session.Error!.Message, Does.StartWith("Unable to open return-path"));
            Assert.That(_vm.State, Is.EqualTo(RunState.Running));
        });
    }

    [Test]
    public void A_destination_that_closes_without_shut_fails_the_migration_after_the_switchover_and_the_vm_runs_again()
    {
        using UnixSocketPair pair = UnixSocketPair.Create();
        var received = new MemoryStream();
        var destination = new Thread(() =>
        {
            // A destination that loads the whole stream but never answers on the return path.
            var registry = new SaveStateRegistry();
            new TimerState().Register(registry);
            var bql = new BigLock();
            using var stream = new FileDescriptorStream(pair.Second, FileAccess.ReadWrite, ownsHandle: false);
            using var recording = new RecordingStream(stream, received);
            using (bql.Acquire())
            {
                using var reader = new MiniVmm.Migration.Stream.MigrationStreamReader(recording);
                new SaveStateLoader(registry, new SavevmOptions(), bql).Load(reader);
            }

            pair.Second.TryShutdownSocket();
        });
        destination.Start();

        MigrationSession session = Migrate(() => new FileDescriptorStream(pair.First, FileAccess.ReadWrite, ownsHandle: false));
        destination.Join();

        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
            Assert.That(session.Error!.Message, Does.Contain("closed the return path before it sent SHUT"));
            Assert.That(_vm.State, Is.EqualTo(RunState.Running), "stopped for the switchover, running again after the failure");
            Assert.That(received.ToArray()[17..22], Is.EqualTo(new byte[] { 0x08, 0x00, 0x01, 0x00, 0x00 }), "OPEN_RETURN_PATH right after the header");
            Assert.That(received.ToArray()[22..31], Is.EqualTo(new byte[] { 0x08, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01 }), "then PING 1");
        });
    }

    /// <summary>A read-only view of a stream that keeps a copy of what was read.</summary>
    private sealed class RecordingStream(System.IO.Stream inner, MemoryStream copy) : System.IO.Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int read = inner.Read(buffer);
            copy.Write(buffer[..read]);
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
