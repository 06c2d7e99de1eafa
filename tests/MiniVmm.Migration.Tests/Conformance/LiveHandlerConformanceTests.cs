using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.Testing;

namespace MiniVmm.Migration.Tests.Conformance;

/// <summary>The live-handler checks themselves: a correct handler passes, and each kind of mistake is reported.</summary>
[TestFixture]
public sealed class LiveHandlerConformanceTests
{
    [Test]
    public void A_correct_chunked_handler_passes() =>
        LiveHandlerConformance.Check(() => new Chunks(filled: true), () => new Chunks(filled: false), SameData);

    [Test]
    public void Features_that_do_not_match_the_class_are_reported()
    {
        var error = Assert.Throws<AssertionException>(() => LiveHandlerConformance.CheckFeatures(new Chunks(filled: true) { Declared = SaveVmHandlerFeatures.Live }));
        Assert.That(error!.Message, Does.Contain("lacks SaveState").And.Contain("implements SaveState"));
    }

    [Test]
    public void A_load_that_swallows_a_short_body_is_reported() =>
        Assert.Throws<AssertionException>(() => LiveHandlerConformance.Check(
            () => new Chunks(filled: true), () => new Chunks(filled: false) { Forgiving = true }, SameData));

    [Test]
    public void A_source_whose_pending_never_drains_is_reported() =>
        Assert.Throws<AssertionException>(() => LiveHandlerConformance.Check(
            () => new Chunks(filled: true) { NeverDone = true }, () => new Chunks(filled: false), SameData,
            new LiveHandlerConformanceOptions { MaxRounds = 50 }));

    private static void SameData(ISaveVmHandlers source, ISaveVmHandlers destination) =>
        Assert.That(((Chunks)destination).Data, Is.EqualTo(((Chunks)source).Data));

    /// <summary>
    /// A live device with 4 chunks of 64 bytes: one chunk per round, a 1-byte tag per record, 0xff
    /// ends a START or PART body, 0xfe the END body; then a FULL section with a checksum.
    /// </summary>
    private sealed class Chunks(bool filled) : ISaveVmHandlers
    {
        private int _next;
        private bool _ended;

        public byte[] Data { get; } = filled ? [.. Enumerable.Range(0, 256).Select(i => (byte)(i * 7))] : new byte[256];

        public SaveVmHandlerFeatures Declared { get; init; } = SaveVmHandlerFeatures.Live | SaveVmHandlerFeatures.SaveState;

        public bool Forgiving { get; init; }

        public bool NeverDone { get; init; }

        public SaveVmHandlerFeatures Features => Declared;

        public void SaveSetup(MigrationStreamWriter stream) => stream.PutByte(0xff);

        public IterationOutcome SaveLiveIterate(MigrationStreamWriter stream)
        {
            if (_next < 4)
            {
                stream.PutByte((byte)_next);
                stream.PutBuffer(Data.AsSpan(_next * 64, 64));
                _next++;
            }

            stream.PutByte(0xff);
            return _next == 4 && !NeverDone ? IterationOutcome.Finished : IterationOutcome.MoreData;
        }

        public PendingSize StatePendingExact() => new((ulong)(4 - _next) * 64 + (NeverDone ? 1UL : 0), 0);

        public void SaveLiveCompletePrecopy(MigrationStreamWriter stream)
        {
            for (; _next < 4; _next++)
            {
                stream.PutByte((byte)_next);
                stream.PutBuffer(Data.AsSpan(_next * 64, 64));
            }

            stream.PutByte(0xfe);
        }

        public void SaveState(MigrationStreamWriter stream) => stream.PutBe32((uint)Data.Sum(b => b));

        public void LoadState(MigrationStreamReader stream, int versionId)
        {
            try
            {
                if (_ended)
                {
                    uint sum = stream.GetBe32();
                    if (sum != (uint)Data.Sum(b => b))
                    {
                        throw new InvalidDataException($"checksum {sum} does not match");
                    }

                    return;
                }

                while (true)
                {
                    byte tag = stream.GetByte();
                    if (tag is 0xff or 0xfe)
                    {
                        _ended = tag == 0xfe;
                        return;
                    }

                    if (tag > 3)
                    {
                        throw new InvalidDataException($"chunk tag {tag} at offset {stream.Offset}");
                    }

                    stream.ReadExactly(Data.AsSpan(tag * 64, 64), "chunk");
                    _next = Math.Max(_next, tag + 1);
                }
            }
            catch (MigrationStreamException) when (Forgiving)
            {
            }
        }
    }
}
