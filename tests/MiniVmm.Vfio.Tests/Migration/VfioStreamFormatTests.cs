using System.Buffers.Binary;
using System.Text;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Native;
using MiniVmm.Runstate;
using MiniVmm.Vfio.Migration;

namespace MiniVmm.Vfio.Tests.Migration;

/// <summary>
/// QEMU's VFIO payload inside savevm sections (<c>docs/vfio.md</c>): the bytes a real save writes,
/// and the loader's refusal of corrupt payloads with a <see cref="MigrationLoadException"/> naming
/// the section.
/// </summary>
[TestFixture]
public sealed class VfioStreamFormatTests
{
    private const VfioMigrationFlags AllFlags = VfioMigrationFlags.StopCopy | VfioMigrationFlags.P2P | VfioMigrationFlags.PreCopy;
    private const string IdStr = "dev0/vfio";
    private const ulong Eos = (ulong)VfioStreamTag.EndOfState;
    private const ulong Setup = (ulong)VfioStreamTag.SetupState;
    private const ulong Data = (ulong)VfioStreamTag.DataState;

    // ---- The wire format of a real save ----

    [Test]
    public void A_save_writes_setup_start_data_records_and_the_config_last()
    {
        using VfioNode source = VfioNode.RunningSource(VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), AllFlags, seed: 5));
        byte[] bytes = SaveByHand(source, dmaBetweenRounds: 40);
        byte[] digest = source.Engine.StateDigest();

        List<ScannedSection> sections = Scan(bytes);
        ScannedSection[] vfio = [.. sections.Where(s => s.IdStr == IdStr)];
        ScannedSection start = vfio.Single(s => s.Type == SectionType.Start);
        ScannedSection[] parts = [.. vfio.Where(s => s.Type == SectionType.Part)];
        ScannedSection end = vfio.Single(s => s.Type == SectionType.End);
        ScannedSection full = vfio.Single(s => s.Type == SectionType.Full);
        byte[] deviceData = [.. vfio.SelectMany(s => s.Records.SelectMany(r => r))];

        Assert.Multiple(() =>
        {
            Assert.That(start.Body, Is.EqualTo(Be64s(Setup, Eos)), "START is exactly [SETUP_STATE][END_OF_STATE]");
            Assert.That(parts, Is.Not.Empty, "precopy sent PART sections");
            Assert.That(parts.Select(p => p.Records.Count), Has.All.LessThanOrEqualTo(1), "save_live_iterate does one read: at most one DATA record");
            Assert.That(parts.Count(p => p.Records.Count == 1), Is.GreaterThan(1), "the precopy data and the dirtied data took several rounds");
            Assert.That(end.Records, Is.Not.Empty, "the stop-copy data goes in the END section");
            Assert.That(vfio.SelectMany(s => s.Records).Select(r => r.Length),
                Has.All.InRange(1, VfioMigrationHandler.DataBufferSize), "records carry 1 byte to 1 MiB");
            Assert.That(full.Body, Is.EqualTo([.. Be64s((ulong)VfioStreamTag.ConfigState), .. source.Config.Space, .. Be64s(Eos)]),
                "FULL is [CONFIG_STATE][config][END_OF_STATE]");
            Assert.That(sections.IndexOf(full), Is.GreaterThan(sections.IndexOf(end)), "the config travels after the data");
            Assert.That(deviceData.LongLength, Is.EqualTo(source.Handler.BytesTransferred), "bytes-transferred counts the DATA payloads");
        });

        // The DATA payloads, concatenated, are exactly what the device's data fd produced: a
        // fresh device resumed from them holds the source's state.
        using var fresh = VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), AllFlags, seed: 6);
        using (FileDescriptorHandle fd = fresh.SetState(VfioDeviceState.Resuming)!)
        {
            fd.WriteAll(deviceData);
            fresh.SetState(VfioDeviceState.Stop);
        }

        Assert.That(fresh.LoadedStateDigest, Is.EqualTo(digest));
    }

    // ---- Corrupt payloads ----

    [Test]
    public void An_unknown_tag_is_refused_naming_the_section()
    {
        MigrationLoadException error = LoadFails(Section(SectionType.Start, Be64s(0xffffffffef100077)));
        Assert.That(error.Message, Does.Contain($"'{IdStr}'").And.Contain("Unknown tag 0xffffffffef100077"));
        Assert.That(error.Section?.IdStr, Is.EqualTo(IdStr));
    }

    [Test]
    public void A_payload_without_end_of_state_fails_when_the_stream_ends()
    {
        byte[] stream = [.. Header(), .. Section(SectionType.Start, Be64s(Setup, Eos)),
            .. PartHeader(), .. Be64s(Data, 4), 1, 2, 3, 4];
        MigrationLoadException error = LoadFails(stream, withEof: false);
        Assert.That(error.Message, Does.Contain($"({IdStr})").And.Contain("unexpected end of stream"));
        Assert.That(error.Offset, Is.EqualTo(stream.Length), "the next tag was due at the end of the stream");
        Assert.That(error.Section?.Type, Is.EqualTo(SectionType.Part));
    }

    [Test]
    public void Init_data_sent_without_switchover_ack_is_refused()
    {
        MigrationLoadException error = LoadFails(Section(SectionType.Start, Be64s((ulong)VfioStreamTag.InitDataSent)));
        Assert.That(error.Message, Does.Contain($"'{IdStr}'").And.Contain("Received INIT_DATA_SENT but switchover ack is not used"));
    }

    [Test]
    public void Setup_state_not_followed_by_end_of_state_is_refused()
    {
        MigrationLoadException error = LoadFails(Section(SectionType.Start, Be64s(Setup, Data, 0, Eos)));
        Assert.That(error.Message, Does.Contain($"'{IdStr}'").And.Contain("EOS not found after SETUP_STATE"));
    }

    [Test]
    public void A_data_size_beyond_the_stream_is_a_truncation_error_without_a_huge_allocation()
    {
        byte[] stream = [.. Header(), .. Section(SectionType.Start, Be64s(Setup, Eos)),
            .. PartHeader(), .. Be64s(Data, 1UL << 40), .. new byte[100]];
        long before = GC.GetAllocatedBytesForCurrentThread();
        MigrationLoadException error = LoadFails(stream, withEof: false);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Multiple(() =>
        {
            Assert.That(error.Message, Does.Contain($"({IdStr})").And.Contain("unexpected end of stream"));
            Assert.That(error.Offset, Is.InRange(stream.Length - 100, stream.Length), "the offset is where the DATA bytes ran out");
            Assert.That(allocated, Is.LessThan(64L << 20), "a 1 TiB size must not be allocated");
        });
    }

    [Test]
    public void A_well_formed_hand_built_payload_loads()
    {
        // The control for the corrupt cases: the same framing with valid tags loads.
        using VfioNode destination = Destination();
        destination.Load(new MemoryStream([.. Header(), .. Section(SectionType.Start, Be64s(Setup, Eos)), (byte)SectionType.Eof]));
        Assert.That(destination.Device.GetState(), Is.EqualTo(VfioDeviceState.Resuming));
    }

    // ---- Helpers ----

    private sealed record ScannedSection(SectionType Type, string IdStr, byte[] Body, List<byte[]> Records);

    private static VfioNode Destination() =>
        VfioNode.Destination(VfioNode.NewEngine(new RecordingGuestMemory(1 << 20), AllFlags, seed: 9));

    private static MigrationLoadException LoadFails(byte[] sections, bool withEof = true)
    {
        using VfioNode destination = Destination();
        byte[] stream = sections.AsSpan(0, 4).SequenceEqual(Be32(StreamHeader.Magic)) ? sections : [.. Header(), .. sections];
        if (withEof)
        {
            stream = [.. stream, (byte)SectionType.Eof];
        }

        MigrationLoadException? error = null;
        try
        {
            destination.Load(new MemoryStream(stream));
        }
        catch (MigrationLoadException caught)
        {
            error = caught;
        }

        Assert.That(error, Is.Not.Null, "the load succeeded");
        return error!;
    }

    /// <summary>Magic, version and the configuration section of machine "none".</summary>
    private static byte[] Header() =>
        [.. Be32(StreamHeader.Magic), .. Be32(StreamHeader.Version), (byte)SectionType.Configuration, .. Be32(4), .. "none"u8];

    /// <summary>A START or FULL section of <c>dev0/vfio</c> (section id 0, instance 0, version 1) with footer.</summary>
    private static byte[] Section(SectionType type, byte[] body) =>
        [(byte)type, .. Be32(0), (byte)IdStr.Length, .. Encoding.ASCII.GetBytes(IdStr), .. Be32(0), .. Be32(1), .. body,
            (byte)SectionType.Footer, .. Be32(0)];

    private static byte[] PartHeader() => [(byte)SectionType.Part, .. Be32(0)];

    private static byte[] Be32(uint value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }

    private static byte[] Be64s(params ulong[] values)
    {
        byte[] bytes = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), values[i]);
        }

        return bytes;
    }

    /// <summary>
    /// A save driven phase by phase as the migration thread does, with DMA by the device between
    /// iteration rounds so that precopy also sends dirtied chunks.
    /// </summary>
    private static byte[] SaveByHand(VfioNode source, int dmaBetweenRounds)
    {
        var transport = new MemoryStream();
        var ballastFree = new SaveStateRegistry();
        source.Handler.Register(ballastFree);
        using (var stream = new MigrationStreamWriter(transport, leaveOpen: true))
        {
            var writer = new SaveStateWriter(ballastFree, stream, new SavevmOptions(), source.Vm.Bql);
            using (source.Vm.Bql.Acquire())
            {
                source.Handler.SavePrepare();
            }

            writer.WriteHeader();
            writer.Setup();
            for (int round = 0; writer.Iterate() == IterationOutcome.MoreData || round < 3; round++)
            {
                Assert.That(round, Is.LessThan(1000), "precopy never ended");
                if (round < 3)
                {
                    Assert.That(source.Engine.PerformDma(dmaBetweenRounds), Is.EqualTo(dmaBetweenRounds), "the device DMAs in PRE_COPY");
                    source.Handler.StatePendingExact(); // PRECOPY_INFO re-arms the data fd after ENOMSG
                }
            }

            using (source.Vm.Bql.Acquire())
            {
                source.Vm.StopForceState(RunState.FinishMigrate).ThrowIfFailed();
                writer.CompletePrecopy();
                source.Vm.SetRunState(RunState.PostMigrate);
                writer.Cleanup();
            }
        }

        return transport.ToArray();
    }

    /// <summary>Every section of a stream whose sections are VFIO payloads.</summary>
    private static List<ScannedSection> Scan(byte[] bytes)
    {
        using var reader = new MigrationStreamReader(new MemoryStream(bytes, writable: false));
        Assert.That(reader.GetBe32(), Is.EqualTo(StreamHeader.Magic));
        Assert.That(reader.GetBe32(), Is.EqualTo(StreamHeader.Version));
        Assert.That(reader.GetByte(), Is.EqualTo((byte)SectionType.Configuration));
        reader.Skip(reader.GetBe32());
        var sections = new List<ScannedSection>();
        var names = new Dictionary<uint, string>();
        while (true)
        {
            var type = (SectionType)reader.GetByte();
            if (type == SectionType.Eof)
            {
                return sections;
            }

            uint id = reader.GetBe32();
            if (type is SectionType.Start or SectionType.Full)
            {
                names[id] = reader.GetCountedString();
                Assert.That(reader.GetBe32(), Is.EqualTo(0u), "instance");
                Assert.That(reader.GetBe32(), Is.EqualTo(1u), "version");
            }

            string idStr = names[id];
            Assert.That(idStr, Is.EqualTo(IdStr));
            long bodyStart = reader.Offset;
            var records = new List<byte[]>();
            var body = new MemoryStream();
            while (true)
            {
                ulong tag = reader.GetBe64();
                body.Write(Be64s(tag));
                if (tag == Eos)
                {
                    break;
                }

                if (tag == (ulong)VfioStreamTag.ConfigState)
                {
                    body.Write(reader.ReadBytes(VfioDeviceConfig.Size, "config"));
                }
                else if (tag == Data)
                {
                    ulong size = reader.GetBe64();
                    byte[] record = reader.ReadBytes((long)size, "DATA");
                    body.Write(Be64s(size));
                    body.Write(record);
                    records.Add(record);
                }
                else if (tag != Setup)
                {
                    Assert.Fail($"unexpected tag 0x{tag:x16} in {type} at {reader.Offset - 8}");
                }
            }

            Assert.That(reader.GetByte(), Is.EqualTo((byte)SectionType.Footer), $"footer of {type} at body offset {bodyStart}");
            Assert.That(reader.GetBe32(), Is.EqualTo(id));
            sections.Add(new ScannedSection(type, idStr, body.ToArray(), records));
        }
    }
}
