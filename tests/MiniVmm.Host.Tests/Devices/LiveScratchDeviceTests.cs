using System.Text.Json.Nodes;
using MiniVmm.Devices.Samples;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.Testing;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Tests.Devices;

/// <summary>
/// <see cref="ChunkedLiveState"/> through its sample, <see cref="LiveScratchDevice"/>: the
/// conformance kit, the rate limit, a geometry mismatch, the writer parking with the VM and the
/// analyzer's decoder.
/// </summary>
[TestFixture]
public sealed class LiveScratchDeviceTests
{
    [Test]
    public void The_live_scratch_device_passes_the_live_handler_checks() =>
        LiveHandlerConformance.Check(
            () =>
            {
                var device = new LiveScratchDevice("l0", sizeKib: 64, seed: 3);
                device.Poke(5, 0x77);
                return device;
            },
            () => new LiveScratchDevice("l0", sizeKib: 64),
            (source, destination) => Assert.That(
                ((LiveScratchDevice)destination).Digest(), Is.EqualTo(((LiveScratchDevice)source).Digest())),
            new LiveHandlerConformanceOptions { TruncationsPerSection = 64 });

    [Test]
    public void A_part_stops_when_the_stream_is_rate_limited_and_the_rest_stays_pending()
    {
        var source = new LiveScratchDevice("l0", sizeKib: 256, seed: 9);
        var destination = new LiveScratchDevice("l0", sizeKib: 256);
        using var bytes = new MemoryStream();
        using (var writer = new MigrationStreamWriter(bytes, leaveOpen: true) { RateLimitBytes = 10_000 })
        {
            source.SaveSetup(writer);
            Assert.That(source.StatePendingExact().MustPrecopy, Is.EqualTo(64UL * 4096));

            writer.StartNewRateWindow();
            Assert.That(source.SaveLiveIterate(writer), Is.EqualTo(IterationOutcome.MoreData));
            // 8 bytes of geometry, then records of 4 + 4096 bytes until the window exceeds 10000: three.
            Assert.That(source.StatePendingExact().MustPrecopy, Is.EqualTo(61UL * 4096));
            Assert.That(source.DirtyChunkCount, Is.EqualTo(61));

            int rounds = 1;
            IterationOutcome outcome;
            do
            {
                writer.StartNewRateWindow();
                outcome = source.SaveLiveIterate(writer);
                rounds++;
            }
            while (outcome != IterationOutcome.Finished);

            Assert.That(rounds, Is.GreaterThan(20));
            Assert.That(source.StatePendingExact().Total, Is.Zero);
            source.SaveLiveCompletePrecopy(writer);
        }

        bytes.Position = 0;
        using var reader = new MigrationStreamReader(bytes);
        while (!reader.IsAtEnd)
        {
            destination.LoadState(reader, 1);
        }

        Assert.That(destination.Digest(), Is.EqualTo(source.Digest()));
    }

    [Test]
    public void A_chunk_dirtied_after_it_was_sent_is_sent_again()
    {
        var source = new LiveScratchDevice("l0", sizeKib: 16, seed: 1);
        var destination = new LiveScratchDevice("l0", sizeKib: 16);
        using var bytes = new MemoryStream();
        using (var writer = new MigrationStreamWriter(bytes, leaveOpen: true))
        {
            source.SaveSetup(writer);
            Assert.That(source.SaveLiveIterate(writer), Is.EqualTo(IterationOutcome.Finished));
            source.Poke(3 * 4096 + 17, 0xee);
            Assert.That(source.StatePendingEstimate().MustPrecopy, Is.EqualTo(4096UL));
            source.SaveLiveCompletePrecopy(writer);
        }

        bytes.Position = 0;
        using var reader = new MigrationStreamReader(bytes);
        while (!reader.IsAtEnd)
        {
            destination.LoadState(reader, 1);
        }

        Assert.That(destination.Digest(), Is.EqualTo(source.Digest()));
    }

    [Test]
    public void A_geometry_mismatch_is_refused_with_an_offset()
    {
        var source = new LiveScratchDevice("l0", sizeKib: 256);
        var destination = new LiveScratchDevice("l0", sizeKib: 128);
        byte[] start = Body(source.SaveSetup);

        using var reader = new MigrationStreamReader(new MemoryStream(start));
        var error = Assert.Throws<MigrationStreamException>(() => destination.LoadState(reader, 1))!;
        Assert.That(error.Message, Does.Contain("64 chunks of 4096 bytes").And.Contain("32 chunks").And.Contain("l0/x-live-scratch").And.Contain("offset 0"));
    }

    [Test]
    public void An_index_out_of_range_is_refused_before_anything_is_written()
    {
        var destination = new LiveScratchDevice("l0", sizeKib: 16);
        string before = destination.Digest();
        byte[] body = [0, 0, 0, 4, 0, 0, 0x10, 0, 0, 0, 0, 9, .. new byte[4096], 0xff, 0xff, 0xff, 0xff];

        using var reader = new MigrationStreamReader(new MemoryStream(body));
        var error = Assert.Throws<MigrationStreamException>(() => destination.LoadState(reader, 1))!;
        Assert.That(error.Message, Does.Contain("chunk index 9 is out of range (0..3)").And.Contain("offset 8"));
        Assert.That(destination.Digest(), Is.EqualTo(before));
    }

    [Test]
    public void The_writer_runs_only_while_the_vm_runs()
    {
        var vm = new VirtualMachine(initial: RunState.Paused);
        using var device = new LiveScratchDevice("l0", vm: vm, sizeKib: 64);
        Thread.Sleep(30);
        Assert.That(device.Writes, Is.Zero);
        using (vm.Bql.Acquire())
        {
            vm.Start().ThrowIfFailed();
        }

        SpinWait.SpinUntil(() => device.Writes > 50, TimeSpan.FromSeconds(10));
        using (vm.Bql.Acquire())
        {
            vm.Stop(RunState.Paused).ThrowIfFailed();
        }

        long writes = device.Writes;
        string digest = device.Digest();
        Thread.Sleep(30);
        Assert.That(device.Writes, Is.EqualTo(writes).And.GreaterThan(50));
        Assert.That(device.Digest(), Is.EqualTo(digest));
        Assert.That(device.DirtyChunkCount, Is.GreaterThan(0));
    }

    [Test]
    public void The_decoder_lists_the_geometry_and_the_chunks()
    {
        var decoder = new ChunkedSectionDecoder(LiveScratchDevice.SectionName);
        Assert.That(decoder.Decodes("l0/x-live-scratch"), Is.True);
        Assert.That(decoder.Decodes("x-live-scratch"), Is.True);
        Assert.That(decoder.Decodes("l0/x-live-scratchy"), Is.False);

        var source = new LiveScratchDevice("l0", sizeKib: 16, seed: 2);
        byte[] start = Body(source.SaveSetup);
        byte[] part = Body(stream => source.SaveLiveIterate(stream));

        JsonObject decoded = Decode(decoder, start, SectionType.Start);
        Assert.That((long)decoded["chunk_count"]!, Is.EqualTo(4));
        Assert.That((long)decoded["chunks"]!, Is.Zero);
        decoded = Decode(decoder, part, SectionType.Part);
        Assert.That((long)decoded["chunks"]!, Is.EqualTo(4));
        Assert.That((long)decoded["data_bytes"]!, Is.EqualTo(4 * 4096));

        // Cut short, the body fails with an offset.
        var error = Assert.Throws<MigrationStreamException>(() => Decode(decoder, part[..5000], SectionType.Part))!;
        Assert.That(error.Message, Does.Contain("offset"));
    }

    private static JsonObject Decode(ChunkedSectionDecoder decoder, byte[] body, SectionType type)
    {
        using var reader = new MigrationStreamReader(new MemoryStream(body));
        return decoder.DecodeBody(reader, type, 1, body.Length);
    }

    private static byte[] Body(Action<MigrationStreamWriter> save)
    {
        using var bytes = new MemoryStream();
        using (var writer = new MigrationStreamWriter(bytes, leaveOpen: true))
        {
            save(writer);
            writer.Flush();
        }

        return bytes.ToArray();
    }
}
