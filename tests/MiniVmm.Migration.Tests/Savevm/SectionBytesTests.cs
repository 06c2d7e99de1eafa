using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Savevm;

/// <summary>
/// Stream bytes by section kind: the writer and the loader count each section, framing included,
/// under its handler's <see cref="ISaveVmHandlers.Kind"/>, and everything outside sections as
/// other, so that the kinds add up to the whole stream on both sides.
/// </summary>
[TestFixture]
public sealed class SectionBytesTests
{
    private const int Padding = 1000;

    private readonly BigLock _bql = new();

    private sealed class Machine
    {
        public Machine(CallLog log, BigLock bql)
        {
            Ram = new RecordingHandlers("ram", log, bql) { Kind = SectionKind.Ram, PaddingBytes = Padding };
            Ram.IterationOutcomes.Enqueue(IterationOutcome.MoreData);
            Vfio = new RecordingHandlers("dev0/vfio", log, bql, SaveVmHandlerFeatures.Live | SaveVmHandlerFeatures.SaveState)
            {
                Kind = SectionKind.Vfio,
                PaddingBytes = 3 * Padding,
            };
            Harness = new RecordingHandlers("x-guest-harness", log, bql, SaveVmHandlerFeatures.SaveState)
            {
                Kind = SectionKind.Harness,
                PaddingBytes = 7,
            };
            Registry.RegisterLive("ram", 0, 4, Ram);
            Registry.RegisterLive("dev0/vfio", 0, 1, Vfio);
            Registry.RegisterVMState(CounterDevice.Vmsd, Counter, instanceId: 0);
            Registry.RegisterLive("x-guest-harness", 0, 1, Harness);
        }

        public SaveStateRegistry Registry { get; } = new();
        public RecordingHandlers Ram { get; }
        public RecordingHandlers Vfio { get; }
        public RecordingHandlers Harness { get; }
        public CounterDevice Counter { get; } = new();
    }

    /// <summary>A whole save: header, OPEN_RETURN_PATH and PING, setup, two rounds, completion.</summary>
    private (byte[] Stream, SectionBytes Counted) Save(Machine machine)
    {
        var transport = new MemoryStream();
        var stream = new MigrationStreamWriter(transport, leaveOpen: true);
        var writer = new SaveStateWriter(machine.Registry, stream, new SavevmOptions(), _bql);
        writer.WriteHeader();
        writer.WriteOpenReturnPath(ping: 1);
        writer.Setup();
        writer.Iterate();
        writer.Iterate();
        using (_bql.Acquire())
        {
            writer.CompletePrecopy();
        }

        stream.Dispose();
        return (transport.ToArray(), writer.Bytes.Snapshot());
    }

    private static int Body(string tag, int padding) => 1 + tag.Length + 4 + padding;

    private static int StartOrFullHeader(string idStr) => 1 + 4 + 1 + idStr.Length + 4 + 4;

    private const int PartOrEndHeader = 1 + 4;

    private const int Footer = 1 + 4;

    [Test]
    public void The_writer_counts_each_section_under_its_handlers_kind_and_the_rest_as_other()
    {
        var machine = new Machine(new CallLog(), _bql);
        (byte[] bytes, SectionBytes counted) = Save(machine);

        int ram = StartOrFullHeader("ram") + Body("ram:setup", Padding) + Footer
            + PartOrEndHeader + Body("ram:iterate1", Padding) + Footer
            + PartOrEndHeader + Body("ram:iterate2", Padding) + Footer
            + PartOrEndHeader + Body("ram:complete", Padding) + Footer;
        // QEMU 7.2 stops a round at the first entry with more to send: VFIO's first PART is in round 2.
        int vfio = StartOrFullHeader("dev0/vfio") + Body("dev0/vfio:setup", 3 * Padding) + Footer
            + PartOrEndHeader + Body("dev0/vfio:iterate1", 3 * Padding) + Footer
            + PartOrEndHeader + Body("dev0/vfio:complete", 3 * Padding) + Footer
            + StartOrFullHeader("dev0/vfio") + Body("dev0/vfio:state", 3 * Padding) + Footer;
        int harness = StartOrFullHeader("x-guest-harness") + Body("x-guest-harness:state", 7) + Footer;

        Assert.Multiple(() =>
        {
            Assert.That(counted.Ram, Is.EqualTo(ram), "ram");
            Assert.That(counted.Vfio, Is.EqualTo(vfio), "vfio");
            Assert.That(counted.Harness, Is.EqualTo(harness), "harness");
            Assert.That(counted.Other, Is.EqualTo(bytes.Length - ram - vfio - harness), "other: the counter's VMState section and all framing");
            Assert.That(counted.Other, Is.GreaterThan(StartOrFullHeader("counter") + CounterDevice.BodyLength + Footer), "the VMState section is other");
            Assert.That(counted.Total, Is.EqualTo(bytes.Length), "the kinds add up to the stream");
        });
    }

    [Test]
    public void The_loader_counts_the_same_bytes_as_the_writer_and_tells_of_each_section()
    {
        var source = new Machine(new CallLog(), _bql);
        (byte[] bytes, SectionBytes written) = Save(source);

        var destination = new Machine(new CallLog(), _bql);
        var loader = new SaveStateLoader(destination.Registry, new SavevmOptions(), _bql);
        var started = new List<string>();
        var loaded = new List<(string IdStr, SectionType Type, long Bytes)>();
        loader.SectionStarting += (entry, type) => started.Add($"{entry.IdStr}:{type}");
        loader.SectionLoaded += (entry, type, size) => loaded.Add((entry.IdStr, type, size));
        using (_bql.Acquire())
        {
            using var reader = new MigrationStreamReader(new MemoryStream(bytes));
            loader.Load(reader);
        }

        SectionBytes read = loader.Bytes.Snapshot();
        Assert.Multiple(() =>
        {
            Assert.That(read, Is.EqualTo(written), "the same bytes under the same kinds on both sides");
            Assert.That(read.Total, Is.EqualTo(bytes.Length));
            Assert.That(loaded.Where(s => s.IdStr == "ram").Sum(s => s.Bytes), Is.EqualTo(written.Ram), "ram sections");
            Assert.That(loaded.Where(s => s.IdStr == "x-guest-harness").Select(s => s.Type), Is.EqualTo(new[] { SectionType.Full }));
            Assert.That(started, Has.Count.EqualTo(loaded.Count), "every started section was loaded");
            Assert.That(started, Does.Contain("dev0/vfio:End").And.Contain("counter:Full"));
        });
    }

    [Test]
    public void A_handler_without_a_kind_counts_as_other()
    {
        var registry = new SaveStateRegistry();
        var plain = new RecordingHandlers("ram", new CallLog(), _bql) { PaddingBytes = Padding };
        registry.RegisterLive("ram", 0, 4, plain);
        var transport = new MemoryStream();
        using var stream = new MigrationStreamWriter(transport, leaveOpen: true);
        var writer = new SaveStateWriter(registry, stream, new SavevmOptions(), _bql);
        writer.WriteHeader();
        writer.Setup();

        Assert.Multiple(() =>
        {
            Assert.That(registry.Entries[0].Kind, Is.EqualTo(SectionKind.Other), "the idstr does not decide the kind; the handler does");
            Assert.That(writer.Bytes.Snapshot().Ram, Is.Zero);
            Assert.That(writer.Bytes.Snapshot().Other, Is.EqualTo(stream.BytesWritten));
        });
    }

    [Test]
    public void The_kind_names_are_the_metric_tag_values()
    {
        Assert.That(
            SectionKindNames.All.Select(k => k.ToTagValue()),
            Is.EquivalentTo(new[] { "ram", "vfio", "harness", "other" }));
    }
}
