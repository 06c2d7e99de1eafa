using System.Net;
using System.Net.Sockets;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stall;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Stall;

/// <summary>
/// The source's stall detection with the real migration thread over real TCP loopback: gathered
/// sends stay on with the watchdog, and a destination that never answers on the return path is
/// caught while every byte was acked by its kernel.
/// </summary>
[TestFixture]
public sealed class StallDetectionSessionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private VirtualMachine _vm = null!;
    private SaveStateRegistry _registry = null!;

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
    }

    [Test]
    public void Over_plain_tcp_with_the_watchdog_on_the_writer_still_sends_by_reference_and_the_migration_completes()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var destination = new Thread(() =>
        {
            using Socket accepted = listener.AcceptSocket();
            using var stream = new NetworkStream(accepted);
            var registry = new SaveStateRegistry();
            new TimerState().Register(registry);
            var bql = new BigLock();
            using (bql.Acquire())
            {
                using var reader = new MiniVmm.Migration.Stream.MigrationStreamReader(stream);
                new SaveStateLoader(registry, new SavevmOptions(), bql).Load(reader);
            }
        });
        destination.Start();

        var parameters = new MigrationParameters { XStallTimeout = 5_000 };
        using var session = new MigrationSession(_registry, _vm, new SavevmOptions(), parameters, MigrationCapabilities.None);
        bool? byReference = null;
        session.Start(cancel =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Connect((IPEndPoint)listener.LocalEndpoint);
            return new NetworkStream(socket, ownsSocket: true);
        });
        SpinWait.SpinUntil(() => session.SendsByReference || session.Status.IsFinished(), Wait);
        byReference = session.SendsByReference;
        Assert.That(session.Finished.Wait(Wait), Is.True, "the migration did not finish");
        destination.Join();

        Assert.Multiple(() =>
        {
            Assert.That(byReference, Is.True, "the writer sees the plain socket and sends pages with gathered sendmsg");
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Completed), session.Error?.ToString());
            Assert.That(session.Parameters.XStallTimeout, Is.EqualTo(5_000));
        });
    }

    [Test]
    public void A_destination_that_never_answers_on_the_return_path_fails_the_source_with_a_destination_stall()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Socket? accepted = null;
        var acceptor = new Thread(() => accepted = listener.AcceptSocket());
        acceptor.Start();

        var parameters = new MigrationParameters { XStallTimeout = 300 };
        MigrationCapabilities capabilities = MigrationCapabilities.None.With(MigrationCapabilities.ReturnPath, true);
        using var session = new MigrationSession(_registry, _vm, new SavevmOptions(), parameters, capabilities);
        session.Start(cancel =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Connect((IPEndPoint)listener.LocalEndpoint);
            return new NetworkStream(socket, ownsSocket: true);
        });
        try
        {
            Assert.That(session.Finished.Wait(Wait), Is.True, "the stalled migration did not fail");
        }
        finally
        {
            acceptor.Join();
            accepted?.Dispose();
        }

        Assert.Multiple(() =>
        {
            Assert.That(session.Status, Is.EqualTo(MigrationStatus.Failed));
            Assert.That(session.Error, Is.TypeOf<MigrationStalledException>(), session.Error?.ToString());
            Assert.That(((MigrationStalledException)session.Error!).Kind, Is.EqualTo(StallKind.Destination));
            Assert.That(session.Error!.Message, Does.Contain("the destination stopped taking the migration stream"));
            Assert.That(_vm.State, Is.EqualTo(RunState.Running), "stopped for the switchover, running again after the stall");
        });
    }
}
