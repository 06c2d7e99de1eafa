using System.Text.Json.Nodes;
using MiniVmm.Migration.Analysis;
using MiniVmm.Migration.Machine;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.Tests.Savevm;

namespace MiniVmm.Migration.Tests.Analysis;

/// <summary>
/// Live sections other than RAM: a decoder plugged in for their idstr reads them; without one,
/// the analyzer skips each body by its section footer instead of giving up.
/// </summary>
[TestFixture]
public sealed class LiveSectionAnalysisTests
{
    [Test]
    public void A_live_section_without_a_decoder_is_skipped_by_its_footer_and_the_walk_goes_on()
    {
        byte[] stream = SaveWithMystery();

        StreamAnalysis analysis = MigrationStreamAnalyzer.Analyze(new MemoryStream(stream));

        Assert.That(analysis.Succeeded, Is.True, analysis.Error?.Message);
        AnalyzedSection[] mystery = [.. analysis.Sections.Where(s => s.IdStr == "x-mystery")];
        Assert.That(mystery.Select(s => s.Type), Is.EqualTo(new[] { SectionType.Start, SectionType.Part, SectionType.End }));
        Assert.That(mystery.Select(s => s.Skipped), Is.EqualTo(new long?[] { 3, Mystery.PartBody.Length, 2 }));
        Assert.That(analysis.Sections.Select(s => s.IdStr), Does.Contain("timer"), "the walk went on after the skipped sections");
    }

    [Test]
    public void A_plugged_in_decoder_reads_the_sections_of_its_idstr()
    {
        byte[] stream = SaveWithMystery();

        StreamAnalysis analysis = MigrationStreamAnalyzer.Analyze(new MemoryStream(stream), [new MysteryDecoder()]);

        Assert.That(analysis.Succeeded, Is.True, analysis.Error?.Message);
        AnalyzedSection part = analysis.Sections.Single(s => s.IdStr == "x-mystery" && s.Type == SectionType.Part);
        Assert.That(part.Decoded?["bytes"]?.GetValue<int>(), Is.EqualTo(Mystery.PartBody.Length));
        Assert.That(part.Skipped, Is.Null);
    }

    [Test]
    public void Without_footers_an_undecodable_live_section_stops_the_walk_with_its_name()
    {
        byte[] stream = SaveWithMystery(new SavevmOptions { SendConfiguration = false, SendSectionFooter = false });

        StreamAnalysis analysis = MigrationStreamAnalyzer.Analyze(new MemoryStream(stream));

        Assert.That(analysis.Succeeded, Is.False);
        Assert.That(analysis.Error!.Message, Does.Contain("'x-mystery' has no decoder"));
    }

    private static byte[] SaveWithMystery(SavevmOptions? options = null)
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("x-mystery", 0, 1, new Mystery());
        registry.RegisterVMState(TimerState.Vmsd, new TimerState { CpuTicksOffset = 5 }, instanceId: 0);
        return SavevmHarness.Save(registry, options);
    }

    /// <summary>A live device whose PART body even holds bytes that look like a footer of another section.</summary>
    private sealed class Mystery : ISaveVmHandlers
    {
        public static readonly byte[] PartBody = [0x7e, 0, 0, 0, 9, 0x04, 1, 2, 3, 0x7e];
        private bool _sent;

        public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live;

        public void SaveSetup(MigrationStreamWriter stream) => stream.PutBuffer([1, 2, 3]);

        public IterationOutcome SaveLiveIterate(MigrationStreamWriter stream)
        {
            if (!_sent)
            {
                stream.PutBuffer(PartBody);
                _sent = true;
            }

            return IterationOutcome.Finished;
        }

        public void SaveLiveCompletePrecopy(MigrationStreamWriter stream) => stream.PutBuffer([4, 5]);

        public void LoadState(MigrationStreamReader stream, int versionId) => throw new NotSupportedException();
    }

    private sealed class MysteryDecoder : IStreamSectionDecoder
    {
        public bool Decodes(string idStr) => idStr == "x-mystery";

        public JsonObject DecodeBody(MigrationStreamReader reader, SectionType type, uint versionId, long bytesLeft)
        {
            int length = type switch { SectionType.Start => 3, SectionType.Part => Mystery.PartBody.Length, _ => 2 };
            reader.Skip(length);
            return new JsonObject { ["bytes"] = length };
        }
    }
}
