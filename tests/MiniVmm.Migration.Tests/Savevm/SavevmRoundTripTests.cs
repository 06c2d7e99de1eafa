using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MiniVmm.Migration.Savevm;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Savevm;

/// <summary>Save into a MemoryStream, load into a second registry with fresh objects, compare; plus the bytes at known offsets.</summary>
[TestFixture]
public sealed class SavevmRoundTripTests
{
    private const string VmDescriptionStart = "{\"page_size\": 4096, \"devices\": [";

    private static readonly byte[] ExpectedHeader =
        [0x51, 0x45, 0x56, 0x4d, 0x00, 0x00, 0x00, 0x03, 0x07, 0x00, 0x00, 0x00, 0x04, 0x6e, 0x6f, 0x6e, 0x65];

    private sealed class Machine
    {
        public Machine(int blobSize)
        {
            Blob = new ChunkedBlobHandlers(blobSize);
            Registry.RegisterLive("blob", 0, 1, Blob);
            Counter.Register(Registry);
            Latch.Register(Registry);
        }

        public SaveStateRegistry Registry { get; } = new();
        public ChunkedBlobHandlers Blob { get; }
        public CounterDevice Counter { get; } = new();
        public LatchDevice Latch { get; } = new();
    }

    private static Machine Source()
    {
        var source = new Machine(blobSize: 40);
        for (int i = 0; i < source.Blob.Payload.Length; i++)
        {
            source.Blob.Payload[i] = (byte)(0xC0 + i);
        }

        source.Counter.Count = 0xDEADBEEF;
        source.Counter.Offset = -1234567890123;
        source.Counter.Registers = [1, 2, 3, 4, 5, 6, 7, 8];
        source.Latch.Closed = true;
        source.Latch.Mode = 0x1234;
        source.Latch.Levels = [-1, 0, int.MaxValue, 42];
        return source;
    }

    private static void SkipBody(string idStr, MiniVmm.Migration.Stream.MigrationStreamReader reader)
    {
        switch (idStr)
        {
            case "counter":
                reader.Skip(CounterDevice.BodyLength);
                break;
            case "latch":
                reader.Skip(LatchDevice.BodyLength);
                break;
            case "blob":
                // A size record (kind 1, be32) or a chunk (kind 2, be32 length, bytes).
                reader.Skip(reader.GetByte() == 1 ? 4 : reader.GetBe32());
                break;
            default:
                throw new AssertionException($"unexpected section {idStr}");
        }
    }

    private static int VmDescriptionJsonOffset(byte[] bytes)
    {
        byte[] start = Encoding.UTF8.GetBytes(VmDescriptionStart);
        int at = bytes.AsSpan().IndexOf(start);
        Assert.That(at, Is.GreaterThan(0), "the vmdesc JSON is in the stream");
        return at;
    }

    [Test]
    public void TwoVMStateDevicesAndALiveHandlerRoundTrip()
    {
        Machine source = Source();
        byte[] bytes = SavevmHarness.Save(source.Registry, iterationRounds: 1);
        var destination = new Machine(blobSize: 0);

        LoadResult result = SavevmHarness.Load(destination.Registry, bytes);

        Assert.That(destination.Blob.Payload, Is.EqualTo(source.Blob.Payload));
        Assert.That(destination.Blob.LoadStateCalls, Is.EqualTo(3), "START, one PART, END");
        Assert.That(destination.Counter.Count, Is.EqualTo(source.Counter.Count));
        Assert.That(destination.Counter.Offset, Is.EqualTo(source.Counter.Offset));
        Assert.That(destination.Counter.Registers, Is.EqualTo(source.Counter.Registers));
        Assert.That(destination.Latch.Closed, Is.True);
        Assert.That(destination.Latch.Mode, Is.EqualTo(source.Latch.Mode));
        Assert.That(destination.Latch.Levels, Is.EqualTo(source.Latch.Levels));
        Assert.That(result.Sections, Is.EqualTo(5));
        Assert.That(result.BytesRead, Is.EqualTo(bytes.Length));
        Assert.That(result.Warnings, Is.Empty);
    }

    [Test]
    public void TheLoadIsRoutedByNameNotByRegistrationOrderOrSectionId()
    {
        Machine source = Source();
        byte[] bytes = SavevmHarness.Save(source.Registry);
        var registry = new SaveStateRegistry();
        var latch = new LatchDevice();
        var counter = new CounterDevice();
        var blob = new ChunkedBlobHandlers(0);
        registry.RegisterLive("unrelated", 0, 1, new RecordingHandlers("unrelated", new CallLog(), new BigLock(), SaveVmHandlerFeatures.None));
        latch.Register(registry);
        counter.Register(registry);
        registry.RegisterLive("blob", 0, 1, blob);

        SavevmHarness.Load(registry, bytes);

        Assert.That(counter.Count, Is.EqualTo(0xDEADBEEF));
        Assert.That(latch.Levels, Is.EqualTo(source.Latch.Levels));
        Assert.That(blob.Payload, Is.EqualTo(source.Blob.Payload));
    }

    [Test]
    public void TheStreamStartsWithQemus72HeaderAndNoneConfiguration()
    {
        byte[] bytes = SavevmHarness.Save(Source().Registry);

        Assert.That(bytes.AsSpan(0, 17).ToArray(), Is.EqualTo(ExpectedHeader));
    }

    [Test]
    public void TheStartSectionHasTypeIdIdStrInstanceVersionThenBodyAndFooter()
    {
        byte[] bytes = SavevmHarness.Save(Source().Registry);

        byte[] expectedStart =
        [
            0x01, 0x00, 0x00, 0x00, 0x00, // START, section id 0
            0x04, (byte)'b', (byte)'l', (byte)'o', (byte)'b', // str8 "blob"
            0x00, 0x00, 0x00, 0x00, // instance 0
            0x00, 0x00, 0x00, 0x01, // version 1
            0x01, 0x00, 0x00, 0x00, 0x28, // body: size record, 40
            0x7e, 0x00, 0x00, 0x00, 0x00, // footer, id 0
            0x02, 0x00, 0x00, 0x00, 0x00, // PART, section id 0 (no idstr)
            0x02, 0x00, 0x00, 0x00, 0x10, // body: a 16-byte chunk
        ];
        Assert.That(bytes.AsSpan(17, expectedStart.Length).ToArray(), Is.EqualTo(expectedStart));
        Assert.That(bytes[17 + expectedStart.Length], Is.EqualTo(0xC0), "the chunk starts with the first payload byte");
    }

    [Test]
    public void FullSectionsCarryTheirIdentityAndEndWithTheirFooter()
    {
        Machine source = Source();
        byte[] bytes = SavevmHarness.Save(source.Registry);
        SaveStateEntry counterEntry = source.Registry.Entries.Single(e => e.IdStr == "counter");

        List<ScannedSection> sections = SavevmHarness.ScanSections(bytes, SkipBody);
        ScannedSection counter = sections.Single(s => s.IdStr == "counter");

        int at = (int)counter.Offset;
        byte[] expectedHeader =
        [
            0x04, 0x00, 0x00, 0x00, (byte)counterEntry.SectionId,
            0x07, .. "counter"u8,
            0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x02,
        ];
        Assert.That(bytes.AsSpan(at, expectedHeader.Length).ToArray(), Is.EqualTo(expectedHeader));
        int body = at + expectedHeader.Length;
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(body)), Is.EqualTo(0xDEADBEEF));
        int footer = body + CounterDevice.BodyLength;
        Assert.That(
            bytes.AsSpan(footer, 5).ToArray(),
            Is.EqualTo(new byte[] { 0x7e, 0x00, 0x00, 0x00, (byte)counterEntry.SectionId }));
        Assert.That(
            sections.Select(s => s.ToString()),
            Is.EqualTo(new[] { "Start blob", "Part blob", "Part blob", "Part blob", "End blob", "Full counter", "Full latch" }));
    }

    [Test]
    public void EofIsFollowedByTheVmDescriptionWithItsLength()
    {
        Machine source = Source();
        byte[] bytes = SavevmHarness.Save(source.Registry);
        int json = VmDescriptionJsonOffset(bytes);

        Assert.That(bytes[json - 6], Is.EqualTo(0x00), "EOF");
        Assert.That(bytes[json - 5], Is.EqualTo(0x06), "VMDESCRIPTION");
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(json - 4)), Is.EqualTo((uint)(bytes.Length - json)));
        Assert.That(bytes.AsSpan(json - 11, 5).ToArray(), Is.EqualTo(new byte[] { 0x7e, 0x00, 0x00, 0x00, 0x02 }), "the latch footer right before EOF");
        using JsonDocument document = JsonDocument.Parse(bytes.AsMemory(json));
        JsonElement devices = document.RootElement.GetProperty("devices");
        Assert.That(document.RootElement.GetProperty("page_size").GetInt32(), Is.EqualTo(4096));
        Assert.That(devices.EnumerateArray().Select(d => d.GetProperty("name").GetString()), Is.EqualTo(new[] { "counter", "latch" }));
        Assert.That(devices[0].GetProperty("version").GetInt32(), Is.EqualTo(2));
        Assert.That(
            devices[0].GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("name").GetString()),
            Is.EqualTo(new[] { "count", "offset", "registers" }));
    }

    [Test]
    public void TheLoaderHandsBackTheVmDescriptionItRead()
    {
        byte[] bytes = SavevmHarness.Save(Source().Registry);
        int json = VmDescriptionJsonOffset(bytes);

        LoadResult result = SavevmHarness.Load(new Machine(0).Registry, bytes);

        Assert.That(result.VmDescription, Is.EqualTo(bytes.AsSpan(json).ToArray()));
    }

    [Test]
    public void ASaveStateEntryIsDescribedAsOneDataBufferOfItsBodySize()
    {
        var registry = new SaveStateRegistry();
        var legacy = new RecordingHandlers("legacy", new CallLog(), new BigLock(), SaveVmHandlerFeatures.SaveState) { PaddingBytes = 3 };
        registry.RegisterLive("legacy", 5, 1, legacy);
        int bodySize = 1 + legacy.Tag("state").Length + 4 + 3;

        byte[] bytes = SavevmHarness.Save(registry);
        string json = Encoding.UTF8.GetString(bytes.AsSpan(VmDescriptionJsonOffset(bytes)));

        Assert.That(json, Is.EqualTo(
            "{\"page_size\": 4096, \"devices\": [{\"name\": \"legacy\", \"instance_id\": 5, " +
            $"\"size\": {bodySize}, \"fields\": [{{\"name\": \"data\", \"size\": {bodySize}, \"type\": \"buffer\"}}]}}]}}"));
    }

    [Test]
    public void WithoutVmDescriptionTheStreamEndsAtEof()
    {
        var options = new SavevmOptions { SendVmDescription = false };
        Machine source = Source();

        byte[] bytes = SavevmHarness.Save(source.Registry, options);
        LoadResult result = SavevmHarness.Load(new Machine(0).Registry, bytes, options);

        Assert.That(bytes[^1], Is.EqualTo(0x00));
        Assert.That(bytes[^6..^1], Is.EqualTo(new byte[] { 0x7e, 0x00, 0x00, 0x00, 0x02 }));
        Assert.That(result.Warnings, Is.Empty);
        Assert.That(result.VmDescription, Is.Null);
    }

    [Test]
    public void WithoutSectionFootersBothSidesAgreeAndNoFooterIsWritten()
    {
        var options = new SavevmOptions { SendSectionFooter = false };
        Machine source = Source();

        byte[] bytes = SavevmHarness.Save(source.Registry, options);
        var destination = new Machine(0);
        SavevmHarness.Load(destination.Registry, bytes, options);

        Assert.That(destination.Counter.Registers, Is.EqualTo(source.Counter.Registers));
        Assert.That(bytes[35..40], Is.EqualTo(new byte[] { 0x01, 0x00, 0x00, 0x00, 0x28 }), "START body");
        Assert.That(bytes[40], Is.EqualTo(0x02), "PART follows the START body directly");
    }
}
