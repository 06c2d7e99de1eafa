using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.GuestHarness.Connection;
using MiniVmm.GuestHarness.Protocol;
using MiniVmm.Migration.Ram;
using MiniVmm.Native;
using MiniVmm.Runstate;

namespace MiniVmm.GuestHarness.Tests;

/// <summary>
/// <see cref="HarnessGuest"/> in process, against a real VM object, real memfd RAM and a real
/// UNIX socket, with a scripted harness peer that can misbehave on purpose.
/// </summary>
[TestFixture]
public sealed class HarnessGuestTests
{
    private string _directory = null!;
    private VirtualMachine _vm = null!;
    private GuestMemory _memory = null!;
    private HarnessGuest? _guest;
    private readonly List<ScriptedHarness> _peers = [];
    private ConcurrentQueue<Exception> _migrationFailures = null!;
    private ConcurrentQueue<VmEvent> _events = null!;

    private string SocketPath => Path.Combine(_directory, "harness.sock");

    [SetUp]
    public void SetUp()
    {
        _directory = Directory.CreateTempSubdirectory("harness-tests-").FullName;
        _vm = new VirtualMachine();
        _memory = GuestMemory.ForMachineNone(16 << 20);
        _migrationFailures = new();
        _events = new();
        _vm.Events.Subscribe(_events.Enqueue);
    }

    [TearDown]
    public void TearDown()
    {
        _guest?.Dispose();
        foreach (ScriptedHarness peer in _peers)
        {
            peer.Dispose();
        }

        _peers.Clear();
        _memory.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private HarnessGuest CreateGuest(int pauseMs = 2000, int connectMs = 2000)
    {
        _guest = new HarnessGuest(
            new HarnessGuestOptions(SocketPath, TimeSpan.FromMilliseconds(pauseMs), TimeSpan.FromMilliseconds(connectMs)),
            _memory, _vm, _migrationFailures.Enqueue, NullLogger<HarnessGuest>.Instance);
        return _guest;
    }

    private ScriptedHarness Connect(
        HarnessFeatures features = HarnessFeatures.State | HarnessFeatures.Throttle,
        Func<HarnessRequest, byte[], ScriptedHarness.Reply?>? script = null)
    {
        ScriptedHarness peer = ScriptedHarness.Connect(SocketPath, features, script);
        _peers.Add(peer);
        return peer;
    }

    private ScriptedHarness ConnectAndWaitForMemory(HarnessFeatures features = HarnessFeatures.State | HarnessFeatures.Throttle)
    {
        ScriptedHarness peer = Connect(features);
        Assert.That(peer.MemoryMapped.Wait(TimeSpan.FromSeconds(10)), Is.True, "the memory table and dirty log never came");
        WaitUntil(() => _guest!.Connection is not null, "the harness was never published");
        return peer;
    }

    private VmStateChangeResult Start()
    {
        using BigLock.Scope held = _vm.Bql.Acquire();
        return _vm.Start();
    }

    private VmStateChangeResult Stop()
    {
        using BigLock.Scope held = _vm.Bql.Acquire();
        return _vm.Stop(RunState.Paused);
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
            {
                Assert.Fail($"timed out: {what}");
            }

            Thread.Sleep(5);
        }
    }

    [Test]
    public void The_socket_is_private_to_its_owner()
    {
        CreateGuest();
        Assume.That(OperatingSystem.IsLinux(), "MiniVmm runs on Linux");
        UnixFileMode mode = OperatingSystem.IsLinux() ? File.GetUnixFileMode(SocketPath) : default;
        Assert.That(mode, Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
    }

    [Test]
    public void A_harness_gets_the_ram_and_its_dirty_log_and_its_marked_writes_reach_the_vm()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        RamBlock block = _memory.Blocks[0];

        peer.WriteAndMark(0x123456, 0xA5);

        Assert.Multiple(() =>
        {
            Assert.That(peer.Accepted, Is.EqualTo((ulong)(HarnessFeatures.State | HarnessFeatures.Throttle)));
            Assert.That(peer.Regions, Has.Count.EqualTo(1));
            Assert.That(peer.Regions[0], Is.EqualTo(new HarnessMemoryRegion(0, 16 << 20, 0, "ram")));
            Assert.That(peer.Logs[0].LogSize, Is.EqualTo((ulong)block.DirtyBitmap.MappedBytes));
            Assert.That(block.GetSpan(0x123456, 1)[0], Is.EqualTo(0xA5));
            Assert.That(block.DirtyBitmap.IsDirty(0x123456 >> 12), Is.True);
            Assert.That(block.DirtyBitmap.CountDirty(), Is.EqualTo(1));
        });
    }

    [Test]
    public void The_memfds_a_harness_receives_are_sealed_against_shrinking()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        FileDescriptorHandle ram = peer.RamFds[0];

        Assert.That(ram.Seals & FileSeals.Shrink, Is.EqualTo(FileSeals.Shrink));
        var refused = Assert.Throws<NativeCallException>(() => ram.Truncate(0));
        Assert.That(refused!.Errno, Is.EqualTo(Errno.EPERM));
    }

    [Test]
    public void Start_sends_run_and_stop_returns_only_after_the_pause_reply()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        int pauseReplied = 0;
        peer.Script = (request, payload) =>
        {
            if (request == HarnessRequest.Pause)
            {
                Thread.Sleep(150);
                Volatile.Write(ref pauseReplied, 1);
            }

            return ScriptedHarness.Cooperative(request, payload);
        };

        Assert.That(Start().Succeeded, Is.True);
        VmStateChangeResult stopped = Stop();

        Assert.Multiple(() =>
        {
            Assert.That(stopped.Succeeded, Is.True);
            Assert.That(Volatile.Read(ref pauseReplied), Is.EqualTo(1), "stop returned before the harness replied to PAUSE");
            Assert.That(peer.Received, Does.Contain(HarnessRequest.Run));
            Assert.That(peer.Received.Last(), Is.EqualTo(HarnessRequest.Pause));
            Assert.That(_vm.State, Is.EqualTo(RunState.Paused));
        });
    }

    [Test]
    public void A_pause_without_reply_fails_the_stop_naming_the_harness()
    {
        CreateGuest(pauseMs: 300);
        ScriptedHarness peer = ConnectAndWaitForMemory();
        Assert.That(Start().Succeeded, Is.True);
        peer.Script = (request, payload) => request == HarnessRequest.Pause ? null : ScriptedHarness.Cooperative(request, payload);

        VmStateChangeResult stopped = Stop();

        Assert.That(stopped.Succeeded, Is.False);
        string message = stopped.Failures.Single().Error.Message;
        Assert.That(message, Does.Contain("guest harness (pid ").And.Contain(SocketPath).And.Contain("Pause got no reply within 300 ms"));

        // The harness stays connected: a later start sends RUN again.
        peer.Script = ScriptedHarness.Cooperative;
        Assert.That(Start().Succeeded, Is.True);
        Assert.That(_vm.State, Is.EqualTo(RunState.Running));
    }

    [Test]
    public void A_late_pause_reply_is_dropped_and_the_next_request_gets_its_own_reply()
    {
        CreateGuest(pauseMs: 200);
        ScriptedHarness peer = ConnectAndWaitForMemory();
        Assert.That(Start().Succeeded, Is.True);
        peer.Script = (request, payload) => request == HarnessRequest.Pause
            ? new ScriptedHarness.Reply(HarnessPayloads.Status(0), DelayMs: 400)
            : ScriptedHarness.Cooperative(request, payload);

        Assert.That(Stop().Succeeded, Is.False);
        Thread.Sleep(300); // the late PAUSE reply arrives while nothing waits for it
        peer.Script = ScriptedHarness.Cooperative;

        Assert.That(Start().Succeeded, Is.True);
        Assert.That(Stop().Succeeded, Is.True);
    }

    [Test]
    public void A_start_without_a_harness_waits_for_the_connect_timeout_then_is_refused()
    {
        CreateGuest(connectMs: 300);

        VmStateChangeResult started = Start();

        Assert.Multiple(() =>
        {
            Assert.That(started.Refusal, Does.Contain("no guest harness connected to " + SocketPath).And.Contain("300 ms"));
            Assert.That(_vm.State, Is.EqualTo(RunState.Prelaunch));
            Assert.That(_events.Select(e => e.Name), Does.Not.Contain("RESUME"));
        });
        Assert.Throws<VmStartRefusedException>(started.ThrowIfFailed);
    }

    [Test]
    public void A_start_waiting_for_a_harness_goes_on_when_one_connects()
    {
        CreateGuest(connectMs: 10000);
        Task<VmStateChangeResult> starting = Task.Run(Start);
        Thread.Sleep(200);
        Assert.That(starting.IsCompleted, Is.False, "the start did not wait for a harness");

        ScriptedHarness peer = Connect();

        Assert.That(starting.Wait(TimeSpan.FromSeconds(10)), Is.True);
        Assert.Multiple(() =>
        {
            Assert.That(starting.Result.Succeeded, Is.True);
            Assert.That(_vm.State, Is.EqualTo(RunState.Running));
        });
        WaitUntil(() => peer.Received.Contains(HarnessRequest.Run), "RUN never reached the harness");
    }

    [Test]
    public void A_harness_that_disconnects_while_the_vm_runs_stops_it_in_internal_error_and_fails_the_migration()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        Assert.That(Start().Succeeded, Is.True);

        peer.Dispose();

        WaitUntil(() => _vm.State == RunState.InternalError, "the VM did not stop");
        WaitUntil(() => _events.Any(e => e.Name == "GUEST_HARNESS_DISCONNECTED"), "no GUEST_HARNESS_DISCONNECTED event");
        string[] names = [.. _events.Select(e => e.Name)];
        VmEvent gone = _events.Single(e => e.Name == "GUEST_HARNESS_DISCONNECTED");
        Assert.Multiple(() =>
        {
            Assert.That(Array.IndexOf(names, "STOP"), Is.LessThan(Array.IndexOf(names, "GUEST_HARNESS_DISCONNECTED")));
            Assert.That(gone.Data!["socket"]!.GetValue<string>(), Is.EqualTo(SocketPath));
            Assert.That(gone.Data!["pid"]!.GetValue<int>(), Is.EqualTo(Environment.ProcessId));
            Assert.That(_migrationFailures.Single().Message, Does.Contain($"guest harness (pid {Environment.ProcessId})").And.Contain("disconnected"));
        });
    }

    [Test]
    public void A_paused_vm_whose_harness_left_refuses_to_start_until_a_new_harness_connects()
    {
        CreateGuest(connectMs: 5000);
        ScriptedHarness first = ConnectAndWaitForMemory();
        Assert.That(Start().Succeeded, Is.True);
        Assert.That(Stop().Succeeded, Is.True);

        first.Dispose();
        WaitUntil(() => _events.Any(e => e.Name == "GUEST_HARNESS_DISCONNECTED"), "the disconnection was not noticed");
        VmStateChangeResult refused = Start();
        Assert.That(refused.Refusal, Does.Contain("the guest harness is gone"));
        Assert.That(_vm.State, Is.EqualTo(RunState.Paused), "a paused VM stays paused when its harness leaves");

        ScriptedHarness second = ConnectAndWaitForMemory();
        Assert.That(Start().Succeeded, Is.True);
        WaitUntil(() => second.Received.Contains(HarnessRequest.Run), "RUN never reached the new harness");
    }

    [Test]
    public void A_second_harness_is_refused_with_ebusy()
    {
        CreateGuest();
        ConnectAndWaitForMemory();

        ScriptedHarness second = Connect();

        Assert.That((long)second.Accepted, Is.EqualTo(-16));
        Assert.That(second.Ended.Wait(TimeSpan.FromSeconds(10)), Is.True, "the refused harness was not disconnected");
    }

    [Test]
    public void The_state_section_counts_as_harness_in_the_streams_bytes_by_kind()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        peer.Script = (request, payload) => request == HarnessRequest.SaveState
            ? new ScriptedHarness.Reply(new byte[100])
            : ScriptedHarness.Cooperative(request, payload);
        var registry = new MiniVmm.Migration.Savevm.SaveStateRegistry();
        _guest!.Register(registry);
        using var output = new MemoryStream();
        using var stream = new MiniVmm.Migration.Stream.MigrationStreamWriter(output, leaveOpen: true);
        var writer = new MiniVmm.Migration.Savevm.SaveStateWriter(registry, stream, new MiniVmm.Migration.Savevm.SavevmOptions(), _vm.Bql);
        using (_vm.Bql.Acquire())
        {
            writer.CompletePrecopy();
        }

        MiniVmm.Migration.Savevm.SectionBytes bytes = writer.Bytes.Snapshot();
        int section = 1 + 4 + 1 + HarnessStateSection.IdStr.Length + 4 + 4 + 4 + 100 + 1 + 4;
        Assert.Multiple(() =>
        {
            Assert.That(registry.Entries.Single().Kind, Is.EqualTo(MiniVmm.Migration.Savevm.SectionKind.Harness));
            Assert.That(bytes.Harness, Is.EqualTo(section), "FULL header, be32 length, the state, footer");
            Assert.That(bytes.Total, Is.EqualTo(stream.BytesWritten));
        });
    }

    [Test]
    public void Save_state_returns_the_harness_bytes_and_load_state_refusals_carry_the_errno()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        peer.Script = (request, payload) => request switch
        {
            HarnessRequest.SaveState => new ScriptedHarness.Reply([9, 8, 7]),
            HarnessRequest.LoadState => new ScriptedHarness.Reply(HarnessPayloads.Status(-22)),
            _ => ScriptedHarness.Cooperative(request, payload),
        };

        using BigLock.Scope held = _vm.Bql.Acquire();
        Assert.That(_guest!.SaveState(), Is.EqualTo(new byte[] { 9, 8, 7 }));
        var refused = Assert.Throws<GuestHarnessException>(() => _guest.LoadState([1, 2]));
        Assert.That(refused!.Message, Does.Contain("refused LoadState: -22 (EINVAL)"));
        Assert.That(refused.Status, Is.EqualTo(-22));
        Assert.That(_guest.HasState, Is.True);
    }

    [Test]
    public void Load_state_into_a_harness_without_state_is_refused_by_name()
    {
        CreateGuest();
        ConnectAndWaitForMemory(HarnessFeatures.None);

        using BigLock.Scope held = _vm.Bql.Acquire();
        var refused = Assert.Throws<GuestHarnessException>(() => _guest!.LoadState([1]));
        Assert.That(refused!.Message, Does.Contain("did not announce STATE"));
        Assert.That(_guest!.HasState, Is.False);
    }

    [Test]
    public void A_state_reply_larger_than_16_MiB_closes_the_connection_before_anything_is_allocated()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        peer.Script = (request, payload) =>
        {
            if (request == HarnessRequest.SaveState)
            {
                // A header that announces 64 MiB, and no payload at all.
                peer.SendRaw(HarnessFrameHeader.ForReply(HarnessRequest.SaveState, 64 << 20), [], []);
                return null;
            }

            return ScriptedHarness.Cooperative(request, payload);
        };

        using BigLock.Scope held = _vm.Bql.Acquire();
        var failed = Assert.Throws<GuestHarnessException>(() => _guest!.SaveState());
        Assert.That(failed!.Message, Does.Contain("went away").And.Contain("16777216 bytes"));
    }

    [Test]
    public void A_harness_that_passes_descriptors_is_disconnected_and_they_are_closed()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        using UnixSocketPair pair = UnixSocketPair.Create();
        peer.Script = (request, payload) =>
        {
            peer.SendRaw(HarnessFrameHeader.ForReply(request, 8), HarnessPayloads.Status(0), [pair.First.Number]);
            return null;
        };

        VmStateChangeResult started = Start();

        Assert.That(started.Succeeded, Is.False);
        Assert.That(started.Failures.Single().Error.Message, Does.Contain("file descriptor"));
        Assert.That(peer.Ended.Wait(TimeSpan.FromSeconds(10)), Is.True);
        // The copy MiniVmm received is closed: the other end sees no extra reference.
        pair.First.Dispose();
        Assert.That(pair.Second.Read(new byte[1]), Is.EqualTo(0), "a descriptor the harness passed was kept open");
    }

    [Test]
    public void The_vcpu_throttle_reaches_a_harness_that_obeys_throttle_only()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        var throttles = new ConcurrentQueue<uint>();
        peer.Script = (request, payload) =>
        {
            if (request == HarnessRequest.Throttle)
            {
                throttles.Enqueue(BitConverter.ToUInt32(payload));
            }

            return ScriptedHarness.Cooperative(request, payload);
        };

        _vm.CpuThrottlePercentage = 40;
        WaitUntil(() => throttles.Contains(40u), "THROTTLE 40 never arrived");
        _vm.CpuThrottlePercentage = 0;
        WaitUntil(() => throttles.Contains(0u), "THROTTLE 0 never arrived");
        // The harness has the request; MiniVmm records the value once the reply is back.
        WaitUntil(() => _guest!.Connection!.AcknowledgedThrottle == 0, "THROTTLE 0 was never acknowledged");
        Assert.That(throttles, Is.EqualTo(new uint[] { 40, 0 }), "each change was sent once, in order");
    }

    [Test]
    public void A_throttle_change_made_while_the_previous_one_waits_for_its_reply_still_arrives()
    {
        // The change to 0 used to be compared with the throttle acknowledged before the reply to
        // 40 came (0) and skipped as unchanged, leaving the harness throttled at 40.
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();
        var throttles = new ConcurrentQueue<uint>();
        peer.Script = (request, payload) =>
        {
            if (request != HarnessRequest.Throttle)
            {
                return ScriptedHarness.Cooperative(request, payload);
            }

            uint percent = BitConverter.ToUInt32(payload);
            throttles.Enqueue(percent);
            return new ScriptedHarness.Reply(HarnessPayloads.Status(0), DelayMs: percent == 40 ? 300 : 0);
        };

        _vm.CpuThrottlePercentage = 40;
        WaitUntil(() => throttles.Contains(40u), "THROTTLE 40 never arrived");
        _vm.CpuThrottlePercentage = 0;

        WaitUntil(() => throttles.Contains(0u), "THROTTLE 0 never arrived");
        WaitUntil(() => _guest!.Connection!.AcknowledgedThrottle == 0, "THROTTLE 0 was never acknowledged");
        Assert.That(throttles, Is.EqualTo(new[] { 40u, 0u }));
    }

    [Test]
    public void A_harness_without_throttle_never_receives_one()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory(HarnessFeatures.State);

        _vm.CpuThrottlePercentage = 60;
        Assert.That(Start().Succeeded, Is.True);
        Assert.That(Stop().Succeeded, Is.True);

        Assert.That(peer.Accepted, Is.EqualTo((ulong)HarnessFeatures.State));
        Assert.That(peer.Received, Does.Not.Contain(HarnessRequest.Throttle));
    }

    [Test]
    public void Disposing_sends_shutdown_and_removes_the_socket()
    {
        CreateGuest();
        ScriptedHarness peer = ConnectAndWaitForMemory();

        _guest!.Dispose();

        Assert.That(peer.Ended.Wait(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(peer.Received, Does.Contain(HarnessRequest.Shutdown));
        Assert.That(File.Exists(SocketPath), Is.False);
    }
}
