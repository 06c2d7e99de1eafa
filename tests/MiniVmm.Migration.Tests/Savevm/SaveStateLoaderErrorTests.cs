using System.Text;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Savevm;

/// <summary>
/// The loader's failures: exception type, QEMU's wording (QEMU 7.2's <c>qemu_loadvm_state</c> and
/// <c>qemu_loadvm_section_start_full</c>), the section and the offset.
/// </summary>
[TestFixture]
public sealed class SaveStateLoaderErrorTests
{
    private const string UnknownSectionHint =
        ". Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices";

    /// <summary>Offset of the first byte after header and configuration (the first section).</summary>
    private const int FirstSection = StreamBuilder.StandardHeaderLength;

    /// <summary>Length of a FULL "timer" section header: type, id, str8 "timer", instance, version.</summary>
    private const int TimerHeaderLength = 1 + 4 + 1 + 5 + 4 + 4;

    private readonly BigLock _bql = new();
    private CallLog _log = null!;
    private TimerState _timer = null!;
    private GlobalState _globalState = null!;
    private RecordingHandlers _ram = null!;
    private SaveStateRegistry _registry = null!;

    /// <summary>A QEMU 7.2 -M none destination: ram (live, v4), timer (v2), globalstate (v1).</summary>
    [SetUp]
    public void CreateDestination()
    {
        _log = new CallLog();
        _registry = new SaveStateRegistry();
        _ram = new RecordingHandlers("ram", _log, _bql);
        _timer = new TimerState();
        _globalState = new GlobalState(new VirtualMachine());
        _registry.RegisterLive("ram", 0, 4, _ram);
        _timer.Register(_registry);
        _globalState.Register(_registry);
    }

    private static StreamBuilder Stream() => new StreamBuilder().StandardHeader();

    private MigrationLoadException LoadFails(StreamBuilder stream, SavevmOptions? options = null) =>
        SavevmHarness.LoadFails(_registry, stream.ToArray(), options);

    private static void AssertFailure(
        MigrationLoadException error, string messageStart, long offset, SectionContext? section = null)
    {
        Assert.That(error, Is.TypeOf<MigrationLoadException>());
        Assert.That(error.Message, Does.StartWith(messageStart));
        Assert.That(error.Offset, Is.EqualTo(offset), "offset");
        Assert.That(error.Message, Does.Contain(MigrationStreamException.DescribeOffset(offset)), "the offset is in the message");
        Assert.That(error.Section, Is.EqualTo(section), "section");
        if (section is not null)
        {
            Assert.That(error.Message, Does.Contain($"in {section}"), "the section is in the message");
        }
    }

    /// <summary>A small valid stream from this side: START/PART/END of ram, FULL timer and globalstate, EOF, vmdesc.</summary>
    private byte[] SmallValidStream()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("ram", 0, 4, new RecordingHandlers("ram", new CallLog(), _bql));
        new TimerState { CpuTicksOffset = 5, CpuClockOffset = 6 }.Register(registry);
        var vm = new VirtualMachine();
        new GlobalState(vm).Register(registry);
        return SavevmHarness.Save(registry, bql: _bql);
    }

    [Test]
    public void EmptyStream()
    {
        MigrationLoadException error = SavevmHarness.LoadFails(_registry, []);

        AssertFailure(error, "the migration stream is empty", 0);
        Assert.That(_log.Names(), Is.EqualTo(new[] { "ram.LoadCleanup" }), "load_setup never ran, load_cleanup did");
    }

    [Test]
    public void TruncationAtEveryOffsetFailsAsALoadErrorUntilEofAndSucceedsAfter()
    {
        byte[] valid = SmallValidStream();
        int eof = valid.AsSpan().IndexOf("{\"page_size\""u8) - 6;
        Assert.That(valid[eof], Is.EqualTo(0x00), "EOF located");
        var unexpected = new List<string>();

        for (int length = 0; length < valid.Length; length++)
        {
            CreateDestination();
            try
            {
                LoadResult result = SavevmHarness.Load(_registry, valid[..length]);
                if (length <= eof)
                {
                    unexpected.Add($"{length}: loaded although EOF is at {eof}");
                }
                else if (result.Warnings.Count != 1)
                {
                    unexpected.Add($"{length}: {result.Warnings.Count} warnings for a cut vmdesc");
                }
            }
            catch (MigrationLoadException error)
            {
                if (length > eof)
                {
                    unexpected.Add($"{length}: failed after EOF: {error.Message}");
                }
                else if (error.Offset < 0 || error.Offset > length)
                {
                    unexpected.Add($"{length}: offset {error.Offset} outside the stream: {error.Message}");
                }
            }
            catch (Exception error)
            {
                unexpected.Add($"{length}: {error.GetType().Name}: {error.Message}");
            }
        }

        Assert.That(unexpected, Is.Empty);
        Assert.That(() => SavevmHarness.Load(_registry, valid), Throws.Nothing, "the whole stream loads");
    }

    [Test]
    public void TruncatedRightBeforeEofIsAnInputOutputError()
    {
        byte[] valid = SmallValidStream();
        int eof = valid.AsSpan().IndexOf("{\"page_size\""u8) - 6;

        MigrationLoadException error = SavevmHarness.LoadFails(_registry, valid[..eof]);

        AssertFailure(error, "the stream ended before its EOF marker (load of migration failed: Input/output error)", eof);
    }

    [Test]
    public void WrongMagic()
    {
        MigrationLoadException error = LoadFails(new StreamBuilder().Bytes("QEVX"u8).Be32(3).Configuration());

        AssertFailure(error, "Not a migration stream", 0);
    }

    [Test]
    public void Version2IsObsolete()
    {
        MigrationLoadException error = LoadFails(new StreamBuilder().Header(version: 2).Configuration());

        AssertFailure(error, "SaveVM v2 format is obsolete and don't work anymore", 4);
    }

    [Test]
    public void Version4IsUnsupported()
    {
        MigrationLoadException error = LoadFails(new StreamBuilder().Header(version: 4).Configuration());

        AssertFailure(error, "Unsupported migration stream version", 4);
    }

    [Test]
    public void ConfigurationMissing()
    {
        MigrationLoadException error = LoadFails(new StreamBuilder().Header().TimerSection(0).Eof());

        AssertFailure(error, "Configuration section missing", 8);
        Assert.That(_timer.CpuTicksOffset, Is.Zero);
    }

    [Test]
    public void ConfigurationMissingBecauseTheStreamEndsAfterTheHeader()
    {
        MigrationLoadException error = LoadFails(new StreamBuilder().Header());

        AssertFailure(error, "Configuration section missing", 8);
    }

    [Test]
    public void WithoutSendConfigurationTheFirstSectionFollowsTheHeader()
    {
        var options = new SavevmOptions { SendConfiguration = false, SendVmDescription = false };

        LoadResult result = SavevmHarness.Load(_registry, new StreamBuilder().Header().TimerSection(0, ticksOffset: 9).Eof().ToArray(), options);

        Assert.That(result.Sections, Is.EqualTo(1));
        Assert.That(_timer.CpuTicksOffset, Is.EqualTo(9));
    }

    [Test]
    public void MachineTypeMismatch()
    {
        MigrationLoadException error = LoadFails(new StreamBuilder().Header().Configuration("pc-i440fx-7.2").Eof());

        AssertFailure(error, "Machine type received is 'pc-i440fx-7.2' and local is 'none'", 8);
    }

    [TestCase("no")]
    [TestCase("none")]
    [TestCase("")]
    public void AReceivedMachineNameThatIsAPrefixOfTheLocalOneIsAccepted(string received)
    {
        LoadResult result = SavevmHarness.Load(_registry, new StreamBuilder().Header().Configuration(received).Eof().ToArray());

        Assert.That(result.Warnings, Is.EqualTo(new[] { "Expected vmdescription section, but got 0" }));
    }

    [Test]
    public void AReceivedMachineNameLongerThanTheLocalOneIsRejected()
    {
        MigrationLoadException error = LoadFails(new StreamBuilder().Header().Configuration("nonexyz").Eof());

        AssertFailure(error, "Machine type received is 'nonexyz' and local is 'none'", 8);
    }

    [Test]
    public void TheLocalMachineNameComesFromTheOptions()
    {
        var options = new SavevmOptions { MachineName = "microvm" };

        MigrationLoadException error = LoadFails(Stream().Eof(), options);

        AssertFailure(error, "Machine type received is 'none' and local is 'microvm'", 8);
    }

    [Test]
    public void UnknownCapability()
    {
        MigrationLoadException error = LoadFails(new StreamBuilder().Header().Configuration("none", "return-path", "warp-drive").Eof());

        AssertFailure(error, "Received unknown capability warp-drive", 8);
    }

    [Test]
    public void AValidatedCapabilityTheDestinationDoesNotHave()
    {
        MigrationLoadException error = LoadFails(new StreamBuilder().Header().Configuration("none", "x-ignore-shared").Eof());

        AssertFailure(error, "Capability x-ignore-shared is off, but received capability is on", 8);
    }

    [Test]
    public void ACapabilityThatIsNotValidatedIsAccepted()
    {
        LoadResult result = SavevmHarness.Load(_registry, new StreamBuilder().Header().Configuration("none", "multifd", "events").Eof().ToArray());

        Assert.That(result.Sections, Is.Zero);
    }

    [Test]
    public void UnknownSectionType9()
    {
        MigrationLoadException error = LoadFails(Stream().U8(0x09));

        AssertFailure(error, "Unknown savevm section type 9", FirstSection);
    }

    [Test]
    public void ASubsectionByteAtTopLevelIsAnUnknownSectionType()
    {
        MigrationLoadException error = LoadFails(Stream().TimerSection(0).U8(0x05));

        AssertFailure(error, "Unknown savevm section type 5", FirstSection + TimerHeaderLength + 24 + 5);
    }

    [Test]
    public void UnknownIdStr()
    {
        MigrationLoadException error = LoadFails(Stream().Full(0, "timerX", 0, 2).Zeros(24).Footer(0).Eof());

        AssertFailure(
            error,
            "Unknown savevm section or instance 'timerX' 0" + UnknownSectionHint,
            FirstSection,
            new SectionContext(SectionType.Full, 0, "timerX", 0));
    }

    [Test]
    public void UnknownInstance()
    {
        MigrationLoadException error = LoadFails(Stream().Full(3, "timer", 1, 2).Zeros(24).Footer(3).Eof());

        AssertFailure(
            error,
            "Unknown savevm section or instance 'timer' 1" + UnknownSectionHint,
            FirstSection,
            new SectionContext(SectionType.Full, 3, "timer", 1));
    }

    [Test]
    public void VersionTooNew()
    {
        MigrationLoadException error = LoadFails(Stream().TimerSection(0, versionId: 3).Eof());

        AssertFailure(error, "savevm: unsupported version 3 for 'timer' v2", FirstSection, new SectionContext(SectionType.Full, 0, "timer", 0));
        Assert.That(error.InnerException, Is.Null);
    }

    [Test]
    public void AnOlderVersionLoadsWithThatVersionsFields()
    {
        // timer v1 has no cpu_clock_offset: 16 bytes of body.
        LoadResult result = SavevmHarness.Load(
            _registry, Stream().Full(0, "timer", 0, 1).Be64(11).Zeros(8).Footer(0).Eof().ToArray());

        Assert.That(result.Sections, Is.EqualTo(1));
        Assert.That(_timer.CpuTicksOffset, Is.EqualTo(11));
    }

    [Test]
    public void RamVersionTooNew()
    {
        MigrationLoadException error = LoadFails(Stream().Start(2, "ram", 0, 5));

        AssertFailure(error, "savevm: unsupported version 5 for 'ram' v4", FirstSection, new SectionContext(SectionType.Start, 2, "ram", 0));
        Assert.That(_ram.Received, Is.Empty);
    }

    [TestCase(SectionType.Part)]
    [TestCase(SectionType.End)]
    public void PartOrEndForASectionNeverStarted(SectionType type)
    {
        StreamBuilder stream = Stream().Start(2, "ram", 0, 4).CountedString("ram:setup").Be32(0).Footer(2)
            .U8((byte)type).Be32(7).CountedString("ram:iterate1").Be32(0).Footer(7).Eof();
        int part = FirstSection + 1 + 4 + 4 + 4 + 4 + 10 + 4 + 5;

        MigrationLoadException error = LoadFails(stream);

        AssertFailure(error, "Unknown savevm section 7", part, new SectionContext(type, 7));
        Assert.That(_ram.Received, Is.EqualTo(new[] { "ram:setup" }));
    }

    [Test]
    public void PartOfAFullSectionIsRoutedToItsEntry()
    {
        // QEMU routes PART/END by the id learned from START *or* FULL.
        StreamBuilder stream = Stream().Full(9, "ram", 0, 4).CountedString("ram:state").Be32(0).Footer(9)
            .Part(9).CountedString("ram:iterate1").Be32(0).Footer(9).Eof();

        SavevmHarness.Load(_registry, stream.ToArray());

        Assert.That(_ram.Received, Is.EqualTo(new[] { "ram:state", "ram:iterate1" }));
    }

    [Test]
    public void MissingFooter()
    {
        MigrationLoadException error = LoadFails(Stream().Full(0, "timer", 0, 2).Zeros(24).Eof());

        AssertFailure(
            error, "Missing section footer for timer", FirstSection + TimerHeaderLength + 24, new SectionContext(SectionType.Full, 0, "timer", 0));
    }

    [Test]
    public void FooterCutOff()
    {
        MigrationLoadException error = LoadFails(Stream().Full(0, "timer", 0, 2).Zeros(24).U8(0x7e).Be16(0));
        int footer = FirstSection + TimerHeaderLength + 24;

        Assert.That(error.Message, Does.StartWith("timer: Read section footer failed"));
        Assert.That(error.Section, Is.EqualTo(new SectionContext(SectionType.Full, 0, "timer", 0)));
        Assert.That(error.Offset, Is.EqualTo(footer + 1), "where the be32 id read began");
    }

    [Test]
    public void MismatchedFooterId()
    {
        StreamBuilder stream = Stream().Start(2, "ram", 0, 4).CountedString("ram:setup").Be32(0).Footer(0x3ea).Eof();
        int footer = FirstSection + 1 + 4 + 4 + 4 + 4 + 10 + 4;

        MigrationLoadException error = LoadFails(stream);

        AssertFailure(
            error, "Mismatched section id in footer for ram - read 0x3ea expected 0x2", footer, new SectionContext(SectionType.Start, 2, "ram", 0));
    }

    [Test]
    public void MismatchedFooterIdInAPartSection()
    {
        StreamBuilder stream = Stream().Start(2, "ram", 0, 4).CountedString("ram:setup").Be32(0).Footer(2)
            .Part(2).CountedString("ram:iterate1").Be32(0).Footer(3).Eof();
        int footer = FirstSection + 1 + 4 + 4 + 4 + 4 + 10 + 4 + 5 + 5 + 13 + 4;

        MigrationLoadException error = LoadFails(stream);

        AssertFailure(
            error, "Mismatched section id in footer for ram - read 0x3 expected 0x2", footer, new SectionContext(SectionType.Part, 2, "ram", 0));
    }

    [Test]
    public void ADeviceErrorIsWrappedNamingTheInstanceAndDevice()
    {
        byte[] runstate = new byte[GlobalState.NameBufferSize];
        "bogus"u8.CopyTo(runstate);
        StreamBuilder stream = Stream().Full(4, "globalstate", 0, 1).Be32(6).Bytes(runstate).Footer(4).Eof();
        int bodyEnd = FirstSection + 1 + 4 + 1 + 11 + 4 + 4 + 4 + GlobalState.NameBufferSize;

        MigrationLoadException error = LoadFails(stream);

        AssertFailure(
            error,
            "error while loading state for instance 0x0 of device 'globalstate'",
            bodyEnd,
            new SectionContext(SectionType.Full, 4, "globalstate", 0));
        Assert.That(error.Message, Does.Contain("globalstate: 'bogus' is not a run state"));
        Assert.That(error.InnerException, Is.InstanceOf<VMStateException>());
        Assert.That(_globalState.ReceivedState, Is.Null);
    }

    [Test]
    public void ABodyCutShortIsADeviceErrorAtTheFailedRead()
    {
        // cpu_ticks_offset (8 bytes) is there, only 2 of the 8 unused bytes are.
        StreamBuilder stream = Stream().Full(0, "timer", 0, 2).Be64(1).Zeros(2);
        int unused = FirstSection + TimerHeaderLength + 8;

        MigrationLoadException error = LoadFails(stream);

        AssertFailure(
            error, "error while loading state for instance 0x0 of device 'timer'", unused, new SectionContext(SectionType.Full, 0, "timer", 0));
    }

    [Test]
    public void ALiveHandlerErrorIsWrappedToo()
    {
        _ram.LoadStateFailure = new InvalidDataException("Size mismatch: ram: 0x8000000 != 0x4000000");

        MigrationLoadException error = LoadFails(Stream().Start(2, "ram", 0, 4).CountedString("ram:setup").Be32(0).Footer(2).Eof());

        AssertFailure(
            error,
            "error while loading state for instance 0x0 of device 'ram': Size mismatch: ram: 0x8000000 != 0x4000000",
            FirstSection,
            new SectionContext(SectionType.Start, 2, "ram", 0));
        Assert.That(error.InnerException, Is.SameAs(_ram.LoadStateFailure));
    }

    [Test]
    public void AnIdStringCutShort()
    {
        MigrationLoadException error = LoadFails(Stream().U8(0x04).Be32(5).U8(11).Bytes("glob"u8));

        Assert.That(error.Message, Does.StartWith("Unable to read ID string for section 5"));
        Assert.That(error.Section, Is.EqualTo(new SectionContext(SectionType.Full, 5)));
        Assert.That(error.Offset, Is.EqualTo(FirstSection + 5), "where the counted string began");
    }

    [Test]
    public void AnInstanceAndVersionCutShort()
    {
        byte[] cut = Stream().Full(0, "timer", 0, 2).ToArray()[..^2];

        MigrationLoadException error = SavevmHarness.LoadFails(_registry, cut);

        Assert.That(error.Message, Does.StartWith("Failed to read instance/version ID"));
        Assert.That(error.Section, Is.EqualTo(new SectionContext(SectionType.Full, 0, "timer")));
    }

    [Test]
    public void AHugeMachineNameLengthFailsFastWithoutAllocatingIt()
    {
        StreamBuilder stream = new StreamBuilder().Header().U8(0x07).Be32(uint.MaxValue).Zeros(1000);

        MigrationLoadException error = LoadFails(stream);

        AssertFailure(error, "configuration section: machine name length 4294967295 is longer than 256", 9);
    }

    [Test]
    public void AHugeCapabilityCountFailsFast()
    {
        StreamBuilder stream = new StreamBuilder().Header().Configuration()
            .U8(0x05).CountedString("configuration/capabilities").Be32(1).Be32(uint.MaxValue).Zeros(1000);

        MigrationLoadException error = LoadFails(stream);

        Assert.That(error.Message, Does.StartWith("configuration section: 4294967295 capabilities is more than any QEMU has"));
        Assert.That(error.Offset, Is.EqualTo(FirstSection));
    }

    [TestCase(uint.MaxValue)]
    [TestCase(10u << 20)]
    public void AHugeVmDescriptionLengthInASmallStreamIsOnlyAWarning(uint length)
    {
        StreamBuilder stream = Stream().TimerSection(0, ticksOffset: 3).Eof()
            .U8(0x06).Be32(length).Bytes(Encoding.UTF8.GetBytes(new string('x', 1000)));

        LoadResult result = SavevmHarness.Load(_registry, stream.ToArray());

        Assert.That(_timer.CpuTicksOffset, Is.EqualTo(3));
        Assert.That(result.VmDescription, Is.Null);
        Assert.That(result.Warnings, Has.Count.EqualTo(1));
        Assert.That(result.Warnings[0], Does.StartWith("the vmdesc trailer is incomplete"));
    }

    [Test]
    public void VmDescriptionMissingIsOnlyAWarning()
    {
        LoadResult result = SavevmHarness.Load(_registry, Stream().TimerSection(0, ticksOffset: 8).Eof().ToArray());

        Assert.That(result.Warnings, Is.EqualTo(new[] { "Expected vmdescription section, but got 0" }));
        Assert.That(_timer.CpuTicksOffset, Is.EqualTo(8));
        Assert.That(result.VmDescription, Is.Null);
    }

    [Test]
    public void SomethingElseInsteadOfVmDescriptionIsOnlyAWarningNamingTheByte()
    {
        LoadResult result = SavevmHarness.Load(_registry, Stream().Eof().U8(0x07).ToArray());

        Assert.That(result.Warnings, Is.EqualTo(new[] { "Expected vmdescription section, but got 7" }));
    }

    [Test]
    public void AnUnmigratableDeviceBlocksTheLoadBeforeAnythingIsRead()
    {
        VMStateDescription<CounterDevice> blocker = VMStateDescription<CounterDevice>.Build("blocker", 1, 1)
            .Unmigratable()
            .UInt32("count", device => ref device.Count)
            .Done();
        _registry.RegisterVMState(blocker, new CounterDevice());

        MigrationLoadException error = LoadFails(Stream().TimerSection(0, ticksOffset: 1).Eof());

        AssertFailure(error, "State blocked by non-migratable device 'blocker'", 0);
        Assert.That(_timer.CpuTicksOffset, Is.Zero);
        Assert.That(_log.Calls, Is.Empty, "no load_setup");
    }

    [TestCase(0x0b, 0, "MIG_CMD 0xb unknown (len 0x0)")]
    [TestCase(0x00, 0, "MIG_CMD 0x0 unknown (len 0x0)")]
    [TestCase(0xffff, 0x12, "MIG_CMD 0xffff unknown (len 0x12)")]
    public void UnknownCommand(int command, int length, string message)
    {
        MigrationLoadException error = LoadFails(Stream().U8(0x08).Be16(command).Be16(length).Eof());

        AssertFailure(error, message, FirstSection);
    }

    [Test]
    public void PingWithoutAReturnPath()
    {
        MigrationLoadException error = LoadFails(Stream().U8(0x08).Be16(2).Be16(4).Be32(1).Eof());

        AssertFailure(error, "CMD_PING (0x1) received with no return path", FirstSection);
    }

    [Test]
    public void PingWithABadLength()
    {
        MigrationLoadException error = LoadFails(Stream().U8(0x08).Be16(2).Be16(2).Be16(1).Eof());

        AssertFailure(error, "CMD_PING received with bad length - expecting 4, got 2", FirstSection);
    }

    [Test]
    public void OpenReturnPathIsAcceptedAndLoadingGoesOn()
    {
        LoadResult result = SavevmHarness.Load(_registry, Stream().U8(0x08).Be16(1).Be16(0).TimerSection(0, ticksOffset: 4).Eof().ToArray());

        Assert.That(result.Sections, Is.EqualTo(1));
        Assert.That(_timer.CpuTicksOffset, Is.EqualTo(4));
    }

    [Test]
    public void OpenReturnPathWithABadLength()
    {
        MigrationLoadException error = LoadFails(Stream().U8(0x08).Be16(1).Be16(4).Be32(0).Eof());

        AssertFailure(error, "CMD_OPEN_RETURN_PATH received with bad length - expecting 0, got 4", FirstSection);
    }

    [TestCase(4, 2, "CMD_POSTCOPY_LISTEN received with bad length - expecting 0, got 2")]
    [TestCase(7, 0, "CMD_PACKAGED received with bad length - expecting 4, got 0")]
    public void OtherFixedLengthCommandsWithABadLength(int command, int length, string message)
    {
        MigrationLoadException error = LoadFails(Stream().U8(0x08).Be16(command).Be16(length).Zeros(length).Eof());

        AssertFailure(error, message, FirstSection);
    }
}
