using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.Multifd;
using MiniVmm.Migration.Tests.Ram;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Migration.Tests.Multifd;

/// <summary>
/// The multifd capture of QEMU 7.2 (tests/fixtures/qemu-7.2/multifd-2ch: the main stream and one
/// stream per channel) loaded into MiniVmm, and the same capture with one field broken at a time.
/// </summary>
[TestFixture]
public sealed class MultifdFixtureTests
{
    private static string Folder => Path.Combine(QemuFixtures.Qemu72, "multifd-2ch");

    private static byte[] Main => File.ReadAllBytes(Path.Combine(Folder, "main.bin"));

    private static byte[] Channel(int id) => File.ReadAllBytes(Path.Combine(Folder, $"channel-{id}.bin"));

    [Test]
    public void The_capture_loads_into_the_same_ram_as_the_plain_fixture()
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        using MultifdReceiver receiver = Accept(machine, 2, Channel(0), Channel(1));
        machine.Load(Main);

        Assert.That(FixtureFiles.Sha256(machine.ReadAllRam()), Is.EqualTo(FixtureFiles.RamImageSha256));
        Assert.That(receiver.PagesReceived, Is.EqualTo(17), "the 17 data pages came on the channels");
        Assert.That(receiver.SyncCount, Is.EqualTo(3), "a sync at each RAM EOS: setup, iteration, completion");
    }

    [Test]
    public void The_channels_may_connect_in_any_order()
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        using MultifdReceiver receiver = Accept(machine, 2, Channel(1), Channel(0));
        machine.Load(Main);
        Assert.That(FixtureFiles.Sha256(machine.ReadAllRam()), Is.EqualTo(FixtureFiles.RamImageSha256));
    }

    [Test]
    public void Our_encoder_writes_qemus_init_packets_and_data_packet_byte_for_byte()
    {
        byte[] init = new byte[MultifdWire.InitPacketSize];
        for (int id = 0; id < 2; id++)
        {
            new MultifdInitPacket((byte)id).Encode(init);
            Assert.That(init, Is.EqualTo(Channel(id)[..MultifdWire.InitPacketSize]), $"init packet of channel {id}");
        }

        byte[] channel = DataPacketChannel(out int at);
        byte[] captured = channel.AsSpan(at, MultifdWire.PacketHeaderSize).ToArray();
        MultifdPacketInfo info = MultifdPacketHeader.Decode(captured, 0, 2);
        long[] offsets = Enumerable.Range(0, info.NormalPages).Select(i => (long)MultifdPacketHeader.Offset(captured, i)).ToArray();
        byte[] ours = new byte[MultifdWire.PacketHeaderSize];
        MultifdPacketHeader.Encode(ours, info.Flags, info.PacketNumber, MultifdPacketHeader.BlockName(captured), offsets);
        Assert.That(ours, Is.EqualTo(captured), "data packet header");
    }

    [TestCase(0, 0x11223345u, MultifdField.Magic, "received magic 0x11223345")]
    [TestCase(4, 2u, MultifdField.Version, "received version 2")]
    public void A_bad_init_packet_is_refused(int at, uint value, MultifdField field, string detail)
    {
        byte[] channel = Channel(0);
        BinaryPrimitives.WriteUInt32BigEndian(channel.AsSpan(at), value);
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        var error = Assert.Throws<MultifdChannelException>(() => Accept(machine, 2, channel, Channel(1)))!;
        Assert.That(error.Field, Is.EqualTo(field));
        Assert.That(error.Packet, Is.EqualTo(0));
        Assert.That(error.Message, Does.Contain("init packet").And.Contain(detail));
    }

    [Test]
    public void A_channel_id_out_of_range_is_refused()
    {
        byte[] channel = Channel(1);
        channel[24] = 2;
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        var error = Assert.Throws<MultifdChannelException>(() => Accept(machine, 2, Channel(0), channel))!;
        Assert.That(error.Field, Is.EqualTo(MultifdField.ChannelId));
        Assert.That(error.Message, Does.Contain("received channel id 2, but multifd-channels is 2"));
    }

    [Test]
    public void A_channel_id_twice_is_refused()
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        var error = Assert.Throws<MultifdChannelException>(() => Accept(machine, 2, Channel(0), Channel(0)))!;
        Assert.That(error.Field, Is.EqualTo(MultifdField.ChannelId));
        Assert.That(error.Message, Does.Contain("channel id 0 was already set up"));
    }

    /// <summary>Breaks one field of channel 0's data packet (its first packet, 17 pages, block "ram").</summary>
    [TestCase(0, 0xdeadbeefu, MultifdField.Magic, "received magic 0xdeadbeef")]
    [TestCase(4, 7u, MultifdField.Version, "received version 7")]
    [TestCase(8, 0x2u, MultifdField.Flags, "flags 0x2")]
    [TestCase(12, 129u, MultifdField.PagesAlloc, "129 pages, at most 128")]
    [TestCase(12, 0xffffffffu, MultifdField.PagesAlloc, "4294967295 pages")]
    [TestCase(16, 129u, MultifdField.NormalPages, "129 pages, more than pages_alloc 128")]
    public void A_bad_header_field_fails_the_load_naming_channel_packet_and_field(int at, uint value, MultifdField field, string detail)
    {
        byte[] channel = DataPacketChannel(out int packet);
        BinaryPrimitives.WriteUInt32BigEndian(channel.AsSpan(packet + at), value);
        AssertLoadFails(channel, field, $"multifd channel 0, packet {PacketIndex(packet)}, field", detail);
    }

    [Test]
    public void An_unknown_block_fails_the_load()
    {
        byte[] channel = DataPacketChannel(out int packet);
        "rom"u8.CopyTo(channel.AsSpan(packet + MultifdWire.HeaderFixedSize - MultifdWire.RamBlockNameSize));
        AssertLoadFails(channel, MultifdField.RamBlock, "field ramblock", "unknown RAM block 'rom'");
    }

    [TestCase(64L << 20)]
    [TestCase((64L << 20) - 4095)]
    [TestCase(-4096L)]
    public void An_offset_outside_the_block_fails_the_load(long offset)
    {
        byte[] channel = DataPacketChannel(out int packet);
        BinaryPrimitives.WriteInt64BigEndian(channel.AsSpan(packet + MultifdWire.HeaderFixedSize + (3 * 8)), offset);
        AssertLoadFails(channel, MultifdField.Offset, "field offset", $"offset[3] = 0x{(ulong)offset:x} is outside RAM block 'ram'");
    }

    [Test]
    public void A_channel_cut_inside_its_pages_fails_the_load()
    {
        byte[] channel = DataPacketChannel(out int packet);
        AssertLoadFails(channel[..(packet + MultifdWire.PacketHeaderSize + 5000)], MultifdField.PageData, "field page data", "of 17 failed");
    }

    [Test]
    public void A_channel_that_ends_before_its_sync_fails_the_load_instead_of_waiting()
    {
        byte[] channel = Channel(1)[..(MultifdWire.InitPacketSize + MultifdWire.PacketHeaderSize)];
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        using MultifdReceiver receiver = Accept(machine, 2, Channel(0), channel);
        MultifdChannelException error = LoadError(machine);
        Assert.That(error.Channel, Is.EqualTo(1));
        Assert.That(error.Message, Does.Contain("ended before the SYNC packet"));
    }

    private static void AssertLoadFails(byte[] channel0, MultifdField field, string where, string detail)
    {
        using var machine = new MachineNoneHarness(FixtureFiles.RamSize);
        using MultifdReceiver receiver = Accept(machine, 2, channel0, Channel(1));
        MultifdChannelException error = LoadError(machine);
        Assert.Multiple(() =>
        {
            Assert.That(error.Channel, Is.EqualTo(0));
            Assert.That(error.Field, Is.EqualTo(field));
            Assert.That(error.Message, Does.Contain(where).And.Contain(detail));
        });
    }

    /// <summary>The load fails with the section named (by the loader) around the channel's typed error.</summary>
    private static MultifdChannelException LoadError(MachineNoneHarness machine)
    {
        var error = Assert.Throws<MiniVmm.Migration.Savevm.MigrationLoadException>(() => machine.Load(Main))!;
        Assert.That(error.Message, Does.Contain("'ram'"), "the loader names the section");
        return error.InnerException as MultifdChannelException
            ?? throw new AssertionException($"not a multifd channel error inside: {error}");
    }

    /// <summary>Channel 0 and the position of its packet with data pages.</summary>
    private static byte[] DataPacketChannel(out int packet)
    {
        byte[] channel = Channel(0);
        packet = MultifdWire.InitPacketSize;
        while (BinaryPrimitives.ReadUInt32BigEndian(channel.AsSpan(packet + 16)) == 0)
        {
            packet += MultifdWire.PacketHeaderSize;
        }

        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(channel.AsSpan(packet + 16)), Is.EqualTo(17), "the capture's data packet");
        return channel;
    }

    private static long PacketIndex(int position) => 1 + ((position - MultifdWire.InitPacketSize) / MultifdWire.PacketHeaderSize);

    private static MultifdReceiver Accept(MachineNoneHarness machine, int channels, params byte[][] streams)
    {
        var queue = new Queue<byte[]>(streams);
        MultifdReceiver receiver = MultifdReceiver.Accept(
            channels, _ => new MemoryStream(queue.Dequeue(), writable: false), machine.Memory, CancellationToken.None, NullLogger.Instance);
        machine.Ram.AttachMultifd(receiver);
        return receiver;
    }
}
