using System.Text;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Migration.Tests.Savevm;

/// <summary>
/// The stream QEMU 7.2 wrote for a 64 MiB <c>-M none</c> guest
/// (tests/fixtures/qemu-7.2/ram-64m-pattern.bin; its sections and offsets are listed in that folder's
/// README.md, the format in docs/stream-format.md).
/// </summary>
[TestFixture]
public sealed class QemuFixtureTests
{
    private static string FixturePath => QemuFixtures.Qemu72Stream;
    private const int FixtureLength = 217852;
    private const int HeaderAndConfigurationLength = 0x11;
    private const int TimerSectionOffset = 0x03505a;
    private const int VmDescriptionLength = 486;

    private static byte[] Fixture()
    {
        Assert.That(File.Exists(FixturePath), Is.True, $"fixture {FixturePath}");
        byte[] bytes = File.ReadAllBytes(FixturePath);
        Assert.That(bytes, Has.Length.EqualTo(FixtureLength));
        return bytes;
    }

    /// <summary>The fixture's header and configuration followed by its device part (timer FULL to the end).</summary>
    private static byte[] DevicePart(byte[] fixture) =>
        [.. fixture.AsSpan(0, HeaderAndConfigurationLength), .. fixture.AsSpan(TimerSectionOffset)];

    [Test]
    public void HeaderAndConfigurationParse()
    {
        using var reader = new MigrationStreamReader(new MemoryStream(Fixture(), writable: false));

        Assert.That(reader.GetBe32(), Is.EqualTo(StreamHeader.Magic));
        Assert.That(reader.GetBe32(), Is.EqualTo(StreamHeader.Version));
        Assert.That(reader.GetByte(), Is.EqualTo((byte)SectionType.Configuration));
        MachineConfiguration configuration = MachineConfiguration.Read(reader);

        Assert.That(configuration.MachineName, Is.EqualTo("none"));
        Assert.That(configuration.Capabilities, Is.Empty);
        Assert.That(configuration.TargetPageBits, Is.Null);
        Assert.That(reader.Offset, Is.EqualTo(HeaderAndConfigurationLength));
        Assert.That(reader.PeekByte(), Is.EqualTo((int)SectionType.Start), "the ram START section follows");
        Assert.That(() => new MachineConfiguration("none", []).CheckReceived(configuration, 8), Throws.Nothing);
    }

    [Test]
    public void OurHeaderAndConfigurationAreByteIdenticalToQemus()
    {
        byte[] fixture = Fixture();
        var transport = new MemoryStream();
        using (var stream = new MigrationStreamWriter(transport, leaveOpen: true))
        {
            new SaveStateWriter(new SaveStateRegistry(), stream, new SavevmOptions(), new BigLock()).WriteHeader();
        }

        Assert.That(transport.ToArray(), Is.EqualTo(fixture.AsSpan(0, HeaderAndConfigurationLength).ToArray()));
    }

    [Test]
    public void TheDevicePartLoadsIntoTimerAndGlobalState()
    {
        byte[] devicePart = DevicePart(Fixture());
        var registry = new SaveStateRegistry();
        var timer = new TimerState { CpuTicksOffset = 99, CpuClockOffset = 98 };
        var globalState = new GlobalState(new VirtualMachine(initial: RunState.InMigrate));
        timer.Register(registry);
        globalState.Register(registry);

        LoadResult result = SavevmHarness.Load(registry, devicePart);

        Assert.That(globalState.ReceivedState, Is.EqualTo(RunState.Prelaunch));
        Assert.That(timer.CpuTicksOffset, Is.Zero);
        Assert.That(timer.CpuClockOffset, Is.Zero);
        Assert.That(result.Sections, Is.EqualTo(2));
        Assert.That(result.Warnings, Is.Empty);
        Assert.That(result.BytesRead, Is.EqualTo(devicePart.Length));
        Assert.That(result.VmDescription, Has.Length.EqualTo(VmDescriptionLength));
        Assert.That(Encoding.UTF8.GetString(result.VmDescription!), Does.StartWith("{\"page_size\": 4096, \"devices\": [{\"name\": \"timer\""));
    }

    [Test]
    public void OurTimerAndGlobalStatePartIsByteIdenticalToQemus()
    {
        byte[] fixture = Fixture();
        var registry = new SaveStateRegistry();
        // QEMU's section ids: timer 0, globalstate 4 (block, ram and dirty-bitmap in between).
        new TimerState().Register(registry);
        for (int i = 1; i < 4; i++)
        {
            registry.RegisterLive($"filler{i}", 0, 1, new RecordingHandlers($"filler{i}", new CallLog(), new BigLock(), SaveVmHandlerFeatures.None));
        }

        var vm = new VirtualMachine();
        new GlobalState(vm).Register(registry);

        byte[] ours = SavevmHarness.Save(registry);

        Assert.That(ours.AsSpan(HeaderAndConfigurationLength).ToArray(), Is.EqualTo(fixture.AsSpan(TimerSectionOffset).ToArray()));
    }

    [Test]
    public void TheDevicePartWithoutTimerAndGlobalStateRegisteredFailsOnTheTimer()
    {
        byte[] devicePart = DevicePart(Fixture());

        MigrationLoadException error = SavevmHarness.LoadFails(new SaveStateRegistry(), devicePart);

        Assert.That(error.Message, Does.StartWith("Unknown savevm section or instance 'timer' 0. Make sure"));
        Assert.That(error.Offset, Is.EqualTo(HeaderAndConfigurationLength));
    }

    [Test]
    public void TheWholeFixtureIsRejectedByAMachineThatIsNotNone()
    {
        MigrationLoadException error = SavevmHarness.LoadFails(
            new SaveStateRegistry(), Fixture(), new SavevmOptions { MachineName = "pc-i440fx-7.2" });

        Assert.That(error.Message, Does.StartWith("Machine type received is 'none' and local is 'pc-i440fx-7.2'"));
    }
}
