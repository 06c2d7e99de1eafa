using System.Text;
using System.Text.Json.Nodes;
using MiniVmm.Migration.Analysis;
using MiniVmm.Migration.Savevm;

namespace MiniVmm.Migration.Tests.Analysis;

/// <summary>The analyzer on the QEMU 7.2 fixture stream, against the fixture README's section table.</summary>
[TestFixture]
public sealed class FixtureStreamAnalysisTests
{
    private const long FixtureLength = 217852;
    private const long EofOffset = 0x035110;
    private const long VmDescOffset = 0x035111;
    private const int VmDescLength = 486;

    private static StreamAnalysis Analyze()
    {
        using var file = File.OpenRead(AnalysisRun.FixturePath);
        return MigrationStreamAnalyzer.Analyze(file);
    }

    [Test]
    public void WalksTheWholeFixture()
    {
        StreamAnalysis analysis = Analyze();

        Assert.That(analysis.Error, Is.Null);
        Assert.That(analysis.Succeeded, Is.True);
        Assert.That(analysis.StreamLength, Is.EqualTo(FixtureLength));
        Assert.That(analysis.Magic, Is.EqualTo(StreamHeader.Magic));
        Assert.That(analysis.Version, Is.EqualTo(3));
        Assert.That(analysis.ConfigurationOffset, Is.EqualTo(8));
        Assert.That(analysis.ConfigurationSize, Is.EqualTo(9));
        Assert.That(analysis.Configuration!.MachineName, Is.EqualTo("none"));
        Assert.That(analysis.Configuration.Capabilities, Is.Empty);
        Assert.That(analysis.EofOffset, Is.EqualTo(EofOffset));
        Assert.That(analysis.VmDescription!.Offset, Is.EqualTo(VmDescOffset));
        Assert.That(analysis.VmDescription.Length, Is.EqualTo(VmDescLength));
    }

    [Test]
    public void SectionsMatchTheFixtureTable()
    {
        IReadOnlyList<AnalyzedSection> sections = Analyze().Sections;

        var actual = sections.Select(s => (s.Type, s.SectionId, s.IdStr, s.InstanceId, s.VersionId, s.Offset, s.Offset + s.Size, s.Complete));
        Assert.That(actual, Is.EqualTo(new (SectionType, uint?, string?, uint?, uint?, long, long, bool)[]
        {
            (SectionType.Start, 2, "ram", 0, 4, 0x11, 0x3e + 5, true),
            (SectionType.Part, 2, "ram", 0, 4, 0x43, 0x035043 + 5, true),
            (SectionType.End, 2, "ram", 0, 4, 0x035048, 0x035055 + 5, true),
            (SectionType.Full, 0, "timer", 0, 2, 0x03505a, 0x035085 + 5, true),
            (SectionType.Full, 4, "globalstate", 0, 1, 0x03508a, 0x03510b + 5, true),
        }));
    }

    [Test]
    public void RamRecordsAreCountedPerSectionAndInTotal()
    {
        StreamAnalysis analysis = Analyze();
        RamSectionSummary start = analysis.Sections[0].Ram!;
        RamSectionSummary part = analysis.Sections[1].Ram!;
        RamSectionSummary end = analysis.Sections[2].Ram!;

        Assert.That(start.TotalRamBytes, Is.EqualTo(0x4000000));
        Assert.That(start.Blocks, Is.EqualTo(new[] { new RamBlockEntry("ram", 0x4000000, null) }));
        Assert.That((start.Records.MemSizeRecords, start.Records.EosRecords, start.Records.Pages), Is.EqualTo((1L, 1L, 0L)));

        Assert.That(part.Records.Pages, Is.EqualTo(17));
        Assert.That(part.Records.ZeroPages, Is.EqualTo(16367));
        Assert.That(part.Records.EosRecords, Is.EqualTo(1));
        Assert.That(part.Records.RecordsNamingBlock, Is.EqualTo(1), "only the first record names the block");
        Assert.That(part.TotalRamBytes, Is.Null);

        Assert.That(end.Records.Records, Is.EqualTo(1), "END holds only EOS");
        Assert.That(end.Records.EosRecords, Is.EqualTo(1));

        Assert.That(analysis.RamTotals.Pages, Is.EqualTo(17));
        Assert.That(analysis.RamTotals.ZeroPages, Is.EqualTo(16367));
        Assert.That(analysis.RamTotals.EosRecords, Is.EqualTo(3));
        Assert.That(analysis.Sections[3].Ram, Is.Null);
    }

    [Test]
    public void StateDumpPrintsTheSectionsAndDecodedFields()
    {
        AnalysisRun run = AnalysisRun.Of(AnalysisRun.FixtureBytes());

        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.Success));
        Assert.That(run.Json["error"], Is.Null);
        Assert.That(run.Json["header"]!["magic"]!.GetValue<string>(), Is.EqualTo("0x5145564d"));
        Assert.That(run.Json["header"]!["version"]!.GetValue<int>(), Is.EqualTo(3));
        Assert.That(run.Json["configuration"]!["machine"]!.GetValue<string>(), Is.EqualTo("none"));
        Assert.That(run.Json["eof_offset"]!.GetValue<long>(), Is.EqualTo(EofOffset));
        Assert.That(run.Json["vmdesc"]!["offset"]!.GetValue<long>(), Is.EqualTo(VmDescOffset));
        Assert.That(run.Json["vmdesc"]!["length"]!.GetValue<int>(), Is.EqualTo(VmDescLength));
        Assert.That(run.Json["totals"]!["ram"]!["page"]!.GetValue<long>(), Is.EqualTo(17));
        Assert.That(run.Json["totals"]!["ram"]!["zero"]!.GetValue<long>(), Is.EqualTo(16367));

        JsonArray sections = run.Sections;
        Assert.That(sections.Select(s => s!["type"]!.GetValue<string>()), Is.EqualTo(new[] { "START", "PART", "END", "FULL", "FULL" }));
        Assert.That(sections[1]!["idstr"]!.GetValue<string>(), Is.EqualTo("ram"), "PART learns its idstr from START");
        Assert.That(sections[1]!["size"]!.GetValue<long>(), Is.EqualTo(0x035048 - 0x43));
        Assert.That(sections[1]!["ram"]!["records"]!["page"]!.GetValue<long>(), Is.EqualTo(17));
        Assert.That(sections[1]!["ram"]!["records"]!["zero"]!.GetValue<long>(), Is.EqualTo(16367));
        Assert.That(sections[0]!["ram"]!["blocks"]![0]!["idstr"]!.GetValue<string>(), Is.EqualTo("ram"));
        Assert.That(sections[0]!["ram"]!["blocks"]![0]!["length"]!.GetValue<long>(), Is.EqualTo(0x4000000));

        JsonArray timer = sections[3]!["state"]!["fields"]!.AsArray();
        Assert.That(timer.Select(f => f!["name"]!.GetValue<string>()), Is.EqualTo(new[] { "cpu_ticks_offset", "unused", "cpu_clock_offset" }));
        Assert.That(timer[0]!["value"]!.GetValue<string>(), Is.EqualTo("0x0000000000000000"));
        Assert.That(timer[1]!["value"]!.GetValue<string>(), Is.EqualTo("00 00 00 00 00 00 00 00"));
        Assert.That(timer[2]!["offset"]!.GetValue<long>(), Is.EqualTo(0x03506d + 16));
    }

    [Test]
    public void GlobalstateRunstateDecodesToPrelaunch()
    {
        AnalysisRun run = AnalysisRun.Of(AnalysisRun.FixtureBytes());
        JsonNode state = run.Sections[4]!["state"]!;
        JsonArray fields = state["fields"]!.AsArray();

        Assert.That(state["vmsd_name"]!.GetValue<string>(), Is.EqualTo("globalstate"));
        Assert.That(fields[0]!["name"]!.GetValue<string>(), Is.EqualTo("size"));
        Assert.That(fields[0]!["type"]!.GetValue<string>(), Is.EqualTo("uint32"));
        Assert.That(fields[0]!["value"]!.GetValue<string>(), Is.EqualTo("0x0000000a"));
        Assert.That(fields[1]!["name"]!.GetValue<string>(), Is.EqualTo("runstate"));
        Assert.That(fields[1]!["size"]!.GetValue<int>(), Is.EqualTo(100));
        Assert.That(fields[1]!["text"]!.GetValue<string>(), Is.EqualTo("prelaunch"));
        string hex = fields[1]!["value"]!.GetValue<string>();
        Assert.That(hex, Does.StartWith("70 72 65 6c 61 75 6e 63 68 00 "));
        Assert.That(hex.Split(' '), Has.Length.EqualTo(100));
    }

    [Test]
    public void DescDumpPrintsTheFixtureVmdesc()
    {
        byte[] bytes = AnalysisRun.FixtureBytes();
        JsonNode expected = JsonNode.Parse(Encoding.UTF8.GetString(bytes, (int)VmDescOffset + 5, VmDescLength))!;

        AnalysisRun run = AnalysisRun.Of(bytes, AnalysisDumpMode.Desc);

        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.Success));
        Assert.That(JsonNode.DeepEquals(run.Json, expected), Is.True, run.Text);
        Assert.That(expected["devices"]![1]!["name"]!.GetValue<string>(), Is.EqualTo("globalstate"));
    }

    [Test]
    public void PathEntryPointReadsTheFile()
    {
        var output = new StringWriter();

        int exitCode = AnalyzeCommand.Run(AnalysisRun.FixturePath, AnalysisDumpMode.State, output);

        Assert.That(exitCode, Is.EqualTo(AnalysisExitCode.Success));
        Assert.That(JsonNode.Parse(output.ToString())!["sections"]!.AsArray(), Has.Count.EqualTo(5));
    }

    [Test]
    public void MissingFileIsReportedAsJson()
    {
        var output = new StringWriter();

        int exitCode = AnalyzeCommand.Run("/nonexistent/analysis-input.bin", AnalysisDumpMode.State, output);

        Assert.That(exitCode, Is.EqualTo(AnalysisExitCode.CannotRead));
        Assert.That(JsonNode.Parse(output.ToString())!["error"]!["message"]!.GetValue<string>(), Does.Contain("cannot open"));
    }

    [Test]
    public void NonSeekableInputIsSpooledAndAnalyzed()
    {
        var output = new StringWriter();
        using var pipe = new ForwardOnlyStream(AnalysisRun.FixtureBytes());

        int exitCode = AnalyzeCommand.Run(pipe, AnalysisDumpMode.State, output);

        Assert.That(exitCode, Is.EqualTo(AnalysisExitCode.Success));
        Assert.That(JsonNode.Parse(output.ToString())!["eof_offset"]!.GetValue<long>(), Is.EqualTo(EofOffset));
    }
}
