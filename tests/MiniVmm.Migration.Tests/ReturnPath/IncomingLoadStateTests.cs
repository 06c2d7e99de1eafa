using MiniVmm.Migration.Machine;
using MiniVmm.Migration.ReturnPath;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.Tests.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.ReturnPath;

/// <summary>
/// The loader's side of the return path: OPEN_RETURN_PATH and PING answered on the channel,
/// and the switchover-ack count (QEMU's <c>qemu_loadvm_approve_switchover</c>; <c>docs/vfio.md</c>).
/// </summary>
[TestFixture]
public sealed class IncomingLoadStateTests
{
    private SaveStateRegistry _registry = null!;
    private TimerState _timer = null!;

    [SetUp]
    public void CreateRegistry()
    {
        _registry = new SaveStateRegistry();
        _timer = new TimerState();
        _timer.Register(_registry);
    }

    private static StreamBuilder Stream() => new StreamBuilder().StandardHeader();

    private static StreamBuilder OpenReturnPath(StreamBuilder stream) => stream.U8(0x08).Be16(1).Be16(0);

    private static StreamBuilder Ping(StreamBuilder stream, uint value) => stream.U8(0x08).Be16(2).Be16(4).Be32(value);

    private LoadResult Load(byte[] bytes, IncomingLoadState state)
    {
        var bql = new BigLock();
        using BigLock.Scope held = bql.Acquire();
        using var reader = new MigrationStreamReader(new MemoryStream(bytes, writable: false));
        return new SaveStateLoader(_registry, new SavevmOptions(), bql).Load(reader, state);
    }

    [Test]
    public void Open_then_ping_answers_pong_with_the_value_and_the_load_goes_on()
    {
        var channel = new MemoryStream();
        using var state = new IncomingLoadState(channel);

        LoadResult result = Load(Ping(OpenReturnPath(Stream()), 0xabcd).TimerSection(0, ticksOffset: 5).Eof().ToArray(), state);

        Assert.Multiple(() =>
        {
            Assert.That(result.Sections, Is.EqualTo(1));
            Assert.That(_timer.CpuTicksOffset, Is.EqualTo(5));
            Assert.That(channel.ToArray(), Is.EqualTo(new StreamBuilder().Be16(2).Be16(4).Be32(0xabcd).ToArray()));
        });
    }

    [Test]
    public void A_second_open_is_ignored()
    {
        var channel = new MemoryStream();
        using var state = new IncomingLoadState(channel);

        Load(Ping(OpenReturnPath(OpenReturnPath(Stream())), 1).Eof().ToArray(), state);

        Assert.That(channel.ToArray(), Is.EqualTo(new StreamBuilder().Be16(2).Be16(4).Be32(1).ToArray()));
    }

    [Test]
    public void Without_a_channel_the_return_path_opens_and_its_answers_are_dropped()
    {
        using var state = new IncomingLoadState(returnChannel: null);

        LoadResult result = Load(Ping(OpenReturnPath(Stream()), 1).TimerSection(0, ticksOffset: 3).Eof().ToArray(), state);

        Assert.That(result.Sections, Is.EqualTo(1));
        Assert.That(state.ReturnPath, Is.Not.Null);
    }

    [Test]
    public void A_channel_that_fails_the_pong_fails_the_load_naming_the_command()
    {
        using var state = new IncomingLoadState(new BrokenChannel());

        MigrationLoadException error = Assert.Throws<MigrationLoadException>(
            () => Load(Ping(OpenReturnPath(Stream()), 7).Eof().ToArray(), state))!;

        Assert.Multiple(() =>
        {
            Assert.That(error.Message, Does.StartWith("CMD_PING (0x7): the PONG could not be sent"));
            Assert.That(error.Offset, Is.EqualTo(StreamBuilder.StandardHeaderLength + 5));
        });
    }

    [Test]
    public void With_switchover_ack_and_no_device_to_wait_for_the_ack_goes_out_when_the_return_path_opens()
    {
        var channel = new MemoryStream();
        using var state = new IncomingLoadState(channel, switchoverAck: true);

        Load(OpenReturnPath(Stream()).Eof().ToArray(), state);

        Assert.Multiple(() =>
        {
            Assert.That(channel.ToArray(), Is.EqualTo(new StreamBuilder().Be16(7).Be16(0).ToArray()));
            Assert.That(state.SwitchoverAcked, Is.True);
        });
    }

    [Test]
    public void Without_switchover_ack_no_ack_is_sent()
    {
        var channel = new MemoryStream();
        using var state = new IncomingLoadState(channel, switchoverAck: false);

        Load(OpenReturnPath(Stream()).Eof().ToArray(), state);

        Assert.That(channel.Length, Is.Zero);
    }

    [Test]
    public void The_ack_waits_for_every_device_that_needs_to_approve()
    {
        var first = new ApprovingDevice();
        var second = new ApprovingDevice();
        _registry.RegisterLive("first", 0, 1, first);
        _registry.RegisterLive("second", 0, 1, second);
        var channel = new MemoryStream();
        using var state = new IncomingLoadState(channel, switchoverAck: true);
        first.State = second.State = state;

        // first (id 1) approves in its START section; second (id 2) only in its PART section.
        byte[] bytes = OpenReturnPath(Stream())
            .Start(1, "first", 0, 1).U8(1).Footer(1)
            .Start(2, "second", 0, 1).U8(0).Footer(2)
            .Part(2).U8(1).Footer(2)
            .Eof().ToArray();
        var ackAfter = new List<int>();
        first.Approved += () => ackAfter.Add((int)channel.Length);
        second.Approved += () => ackAfter.Add((int)channel.Length);

        Load(bytes, state);

        Assert.Multiple(() =>
        {
            Assert.That(ackAfter, Is.EqualTo(new[] { 0, 4 }), "no ack after the first approval, the ack right after the second");
            Assert.That(state.PendingSwitchoverAcks, Is.Zero);
            Assert.That(channel.ToArray(), Is.EqualTo(new StreamBuilder().Be16(7).Be16(0).ToArray()));
        });
    }

    [Test]
    public void An_approval_nobody_waits_for_fails_the_load()
    {
        var device = new ApprovingDevice();
        _registry.RegisterLive("device", 0, 1, device);
        using var state = new IncomingLoadState(new MemoryStream(), switchoverAck: true);
        device.State = state;

        MigrationLoadException error = Assert.Throws<MigrationLoadException>(() => Load(
            OpenReturnPath(Stream()).Start(1, "device", 0, 1).U8(1).Footer(1).Part(1).U8(1).Footer(1).Eof().ToArray(), state))!;

        Assert.That(error.Message, Does.Contain("no device is still waiting to approve"));
    }

    [Test]
    public void An_approval_before_the_return_path_opened_fails_the_load()
    {
        var device = new ApprovingDevice();
        _registry.RegisterLive("device", 0, 1, device);
        using var state = new IncomingLoadState(new MemoryStream(), switchoverAck: true);
        device.State = state;

        MigrationLoadException error = Assert.Throws<MigrationLoadException>(
            () => Load(Stream().Start(1, "device", 0, 1).U8(1).Footer(1).Eof().ToArray(), state))!;

        Assert.That(error.Message, Does.Contain("never opened the return path"));
    }

    [Test]
    public void Shut_reports_the_outcome_only_once_the_return_path_is_open()
    {
        var channel = new MemoryStream();
        using var state = new IncomingLoadState(channel);
        state.Shut(failed: true);
        Assert.That(channel.Length, Is.Zero, "no return path, no SHUT");

        Load(OpenReturnPath(Stream()).Eof().ToArray(), state);
        state.Shut(failed: true);

        Assert.That(channel.ToArray(), Is.EqualTo(new StreamBuilder().Be16(1).Be16(4).Be32(1).ToArray()));
    }

    /// <summary>A live section that needs to approve the switchover; a body byte of 1 approves.</summary>
    private sealed class ApprovingDevice : ISaveVmHandlers
    {
        public IncomingLoadState? State { get; set; }

        public event Action? Approved;

        public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live;

        public bool SwitchoverAckNeeded() => true;

        public void LoadState(MigrationStreamReader stream, int versionId)
        {
            if (stream.GetByte() == 1)
            {
                State!.ApproveSwitchover();
                Approved?.Invoke();
            }
        }
    }
}
