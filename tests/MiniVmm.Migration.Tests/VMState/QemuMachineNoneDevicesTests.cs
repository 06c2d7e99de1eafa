using System.Text;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Migration.Tests.VMState;

/// <summary>
/// The two devices of QEMU 7.2's <c>-M none</c> machine, described here as QEMU describes
/// them, against what QEMU 7.2 wrote into the fixture stream ram-64m-pattern.bin.
/// </summary>
public sealed class QemuMachineNoneDevicesTests
{
    private static string FixturePath => QemuFixtures.Qemu72Stream;
    private const int TimerBodyOffset = 0x03506d;
    private const int GlobalStateBodyOffset = 0x0350a3;
    private const int VmdescLengthOffset = 0x035112;
    private const int VmdescOffset = 0x035116;

    private const string ExpectedVmdesc =
        "{\"page_size\": 4096, \"devices\": [{\"name\": \"timer\", \"instance_id\": 0, \"vmsd_name\": \"timer\", \"version\": 2, " +
        "\"fields\": [{\"name\": \"cpu_ticks_offset\", \"type\": \"int64\", \"size\": 8}, {\"name\": \"unused\", \"type\": \"unused_buffer\", \"size\": 8}, " +
        "{\"name\": \"cpu_clock_offset\", \"type\": \"int64\", \"size\": 8}]}, {\"name\": \"globalstate\", \"instance_id\": 0, \"vmsd_name\": \"globalstate\", " +
        "\"version\": 1, \"fields\": [{\"name\": \"size\", \"type\": \"uint32\", \"size\": 4}, {\"name\": \"runstate\", \"type\": \"buffer\", \"size\": 100}]}]}";

    private static readonly VMStateDescription<TimerState> TimerDescription =
        VMStateDescription<TimerState>.Build("timer", version: 2, minimumVersion: 2)
            .Int64("cpu_ticks_offset", s => ref s.CpuTicksOffset)
            .Unused(8)
            .Int64("cpu_clock_offset", s => ref s.CpuClockOffset)
            .Done();

    private static readonly VMStateDescription<GlobalState> GlobalStateDescription =
        VMStateDescription<GlobalState>.Build("globalstate", version: 1, minimumVersion: 1)
            .UInt32("size", s => ref s.Size)
            .Buffer("runstate", s => s.RunState)
            .Done();

    [Test]
    public void Vmdesc_of_both_devices_is_byte_identical_to_qemu_7_2()
    {
        var vmdesc = new VmDescriptionWriter();
        vmdesc.StartObject();
        vmdesc.Int64("page_size", 4096);
        vmdesc.StartArray("devices");
        DescribeDevice(vmdesc, "timer", TimerDescription, new TimerState());
        DescribeDevice(vmdesc, "globalstate", GlobalStateDescription, GlobalState.Of("prelaunch"));
        vmdesc.EndArray();
        vmdesc.EndObject();

        Assert.That(vmdesc.IsComplete, Is.True);
        Assert.That(vmdesc.ToString(), Is.EqualTo(ExpectedVmdesc));
        Assert.That(vmdesc.ToUtf8(), Has.Length.EqualTo(486));
    }

    [Test]
    public void Vmdesc_matches_the_json_inside_the_fixture()
    {
        byte[] fixture = File.ReadAllBytes(FixturePath);
        int length = (fixture[VmdescLengthOffset] << 24) | (fixture[VmdescLengthOffset + 1] << 16)
            | (fixture[VmdescLengthOffset + 2] << 8) | fixture[VmdescLengthOffset + 3];

        Assert.That(Encoding.ASCII.GetString(fixture, VmdescOffset, length), Is.EqualTo(ExpectedVmdesc));
    }

    [Test]
    public void Timer_body_matches_the_fixture_and_loads_from_it()
    {
        byte[] fixture = File.ReadAllBytes(FixturePath);
        byte[] body = VMStateStreams.Save(TimerDescription, new TimerState());

        Assert.That(body, Is.EqualTo(fixture.AsSpan(TimerBodyOffset, 24).ToArray()));

        var loaded = new TimerState { CpuTicksOffset = 5, CpuClockOffset = 6 };
        using MigrationStreamReader reader = VMStateStreams.Reader(fixture);
        reader.Skip(TimerBodyOffset);
        TimerDescription.Load(reader, loaded, versionId: 2);
        Assert.That(reader.Offset, Is.EqualTo(TimerBodyOffset + 24));
        Assert.That(reader.PeekByte(), Is.EqualTo(0x7e), "the section footer follows");
        Assert.That((loaded.CpuTicksOffset, loaded.CpuClockOffset), Is.EqualTo((0L, 0L)));
    }

    [Test]
    public void Globalstate_body_matches_the_fixture_and_loads_from_it()
    {
        byte[] fixture = File.ReadAllBytes(FixturePath);
        byte[] body = VMStateStreams.Save(GlobalStateDescription, GlobalState.Of("prelaunch"));

        Assert.That(body, Has.Length.EqualTo(104));
        Assert.That(body, Is.EqualTo(fixture.AsSpan(GlobalStateBodyOffset, 104).ToArray()));

        var loaded = new GlobalState();
        using MigrationStreamReader reader = VMStateStreams.Reader(fixture);
        reader.Skip(GlobalStateBodyOffset);
        GlobalStateDescription.Load(reader, loaded, versionId: 1);
        Assert.That(reader.PeekByte(), Is.EqualTo(0x7e), "the section footer follows");
        Assert.That(loaded.Size, Is.EqualTo(10u));
        Assert.That(Encoding.ASCII.GetString(loaded.RunState, 0, 9), Is.EqualTo("prelaunch"));
    }

    // What the coordinator writes around a device's own vmdesc members.
    private static void DescribeDevice(VmDescriptionWriter vmdesc, string idstr, VMStateDescription description, object state)
    {
        vmdesc.StartObject();
        vmdesc.String("name", idstr);
        vmdesc.Int64("instance_id", 0);
        using (var writer = new MigrationStreamWriter(new MemoryStream()))
        {
            description.Save(writer, state, vmdesc);
        }

        vmdesc.EndObject();
    }

    private sealed class TimerState
    {
        public long CpuTicksOffset;
        public long CpuClockOffset;
    }

    private sealed class GlobalState
    {
        public uint Size;
        public byte[] RunState = new byte[100];

        public static GlobalState Of(string runState)
        {
            var state = new GlobalState { Size = (uint)runState.Length + 1 };
            Encoding.ASCII.GetBytes(runState, state.RunState);
            return state;
        }
    }
}
