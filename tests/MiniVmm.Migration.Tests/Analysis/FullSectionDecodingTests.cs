using System.Text.Json.Nodes;
using MiniVmm.Migration.Analysis;

namespace MiniVmm.Migration.Tests.Analysis;

/// <summary>FULL section bodies decoded with hand-made vmdescs: arrays, structs, subsections and bad descriptions.</summary>
[TestFixture]
public sealed class FullSectionDecodingTests
{
    private const string DeviceJson =
        "{\"page_size\": 4096, \"devices\": [{\"name\": \"dev\", \"instance_id\": 1, \"vmsd_name\": \"dev\", \"version\": 3, \"fields\": ["
        + "{\"name\": \"regs\", \"array_len\": 3, \"type\": \"uint8\", \"size\": 1}, "
        + "{\"name\": \"delta\", \"type\": \"int32\", \"size\": 4}, "
        + "{\"name\": \"on\", \"type\": \"bool\", \"size\": 1}, "
        + "{\"name\": \"ptr\", \"type\": \"nullptr\", \"size\": 1}, "
        + "{\"name\": \"inner\", \"type\": \"struct\", \"struct\": {\"vmsd_name\": \"inner\", \"version\": 1, \"fields\": ["
        + "{\"name\": \"a\", \"type\": \"uint16\", \"size\": 2}]}, \"size\": 2}, "
        + "{\"name\": \"q\", \"index\": 0, \"type\": \"uint64\", \"size\": 8}, "
        + "{\"name\": \"q\", \"index\": 1, \"type\": \"uint64\", \"size\": 8}"
        + "], \"subsections\": [{\"vmsd_name\": \"dev/extra\", \"version\": 2, \"fields\": [{\"name\": \"x\", \"type\": \"uint16\", \"size\": 2}]}]}]}";

    private static StreamBytes DeviceSection(string subsectionName = "dev/extra")
    {
        var stream = new StreamBytes().Preamble().NamedSection(0x04, 5, "dev", 1, 3);
        stream.U8(1).U8(2).U8(3).Be32(0xfffffffe).U8(1).U8(0x30).Be16(0xbeef).Be64(7).Be64(8);
        return stream.U8(0x05).Counted(subsectionName).Be32(2).Be16(0x1234).Footer(5);
    }

    private static AnalysisRun Run(StreamBytes stream) => AnalysisRun.Of(stream.ToArray());

    [Test]
    public void FieldsArraysStructsAndSubsectionsAreDecoded()
    {
        AnalysisRun run = Run(DeviceSection().EofAndVmdesc(DeviceJson));

        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.Success), run.Text);
        JsonNode state = run.Sections[0]!["state"]!;
        JsonArray fields = state["fields"]!.AsArray();
        Assert.That(state["vmsd_name"]!.GetValue<string>(), Is.EqualTo("dev"));
        Assert.That(fields[0]!["array_len"]!.GetValue<int>(), Is.EqualTo(3));
        Assert.That(fields[0]!["values"]!.AsArray().Select(v => v!.GetValue<string>()), Is.EqualTo(new[] { "0x01", "0x02", "0x03" }));
        Assert.That(fields[1]!["value"]!.GetValue<string>(), Is.EqualTo("0xfffffffe (-2)"));
        Assert.That(fields[2]!["value"]!.GetValue<bool>(), Is.True);
        Assert.That(fields[3]!["value"]!.GetValue<string>(), Is.EqualTo("nullptr"));
        Assert.That(fields[4]!["value"]!["fields"]![0]!["value"]!.GetValue<string>(), Is.EqualTo("0xbeef"));
        Assert.That(fields[6]!["index"]!.GetValue<int>(), Is.EqualTo(1));
        Assert.That(fields[6]!["value"]!.GetValue<string>(), Is.EqualTo("0x0000000000000008"));
        JsonNode subsection = state["subsections"]![0]!;
        Assert.That(subsection["name"]!.GetValue<string>(), Is.EqualTo("dev/extra"));
        Assert.That(subsection["stream_version"]!.GetValue<int>(), Is.EqualTo(2));
        Assert.That(subsection["fields"]![0]!["value"]!.GetValue<string>(), Is.EqualTo("0x1234"));
    }

    [Test]
    public void NestedArraysOfEmptyStructsEndWithAnErrorInsteadOfRunningForever()
    {
        // 10^12 empty values described by a 200-byte stream: the walk must stop at the budget.
        const string json =
            "{\"devices\": [{\"name\": \"dev\", \"instance_id\": 0, \"vmsd_name\": \"dev\", \"version\": 1, \"fields\": ["
            + "{\"name\": \"outer\", \"type\": \"struct\", \"array_len\": 1000000, \"struct\": {\"fields\": ["
            + "{\"name\": \"inner\", \"type\": \"struct\", \"array_len\": 1000000, \"struct\": {\"fields\": []}}]}}]}]}";
        var stream = new StreamBytes().Preamble().NamedSection(0x04, 0, "dev", 0, 1);
        int body = stream.Length;
        stream.Footer(0).EofAndVmdesc(json);

        Task<AnalysisRun> analysis = Task.Run(() => Run(stream));

        Assert.That(analysis.Wait(TimeSpan.FromSeconds(60)), Is.True, "the analysis never ended");
        AnalysisRun run = analysis.Result;
        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.BadStream));
        Assert.That(run.ErrorMessage, Does.Contain("more than 65536 values in this section take no stream bytes"));
        Assert.That(run.ErrorOffset, Is.EqualTo(body));
    }

    [Test]
    public void ALongArrayShowsItsFirstElementsAndTheNextFieldStillDecodes()
    {
        const string json =
            "{\"devices\": [{\"name\": \"dev\", \"instance_id\": 0, \"vmsd_name\": \"dev\", \"version\": 1, \"fields\": ["
            + "{\"name\": \"big\", \"type\": \"uint16\", \"size\": 2, \"array_len\": 100000}, "
            + "{\"name\": \"after\", \"type\": \"uint32\", \"size\": 4}]}]}";
        var stream = new StreamBytes().Preamble().NamedSection(0x04, 0, "dev", 0, 1);
        for (int i = 0; i < 100000; i++)
        {
            stream.Be16((ushort)i);
        }

        stream.Be32(0xcafef00d).Footer(0).EofAndVmdesc(json);

        AnalysisRun run = Run(stream);

        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.Success), run.Text[..Math.Min(2000, run.Text.Length)]);
        JsonArray fields = run.Sections[0]!["state"]!["fields"]!.AsArray();
        Assert.That(fields[0]!["values"]!.AsArray(), Has.Count.EqualTo(1024));
        Assert.That(fields[0]!["values"]![1023]!.GetValue<string>(), Is.EqualTo("0x03ff"));
        Assert.That(fields[0]!["values_shown"]!.GetValue<int>(), Is.EqualTo(1024));
        Assert.That(fields[1]!["value"]!.GetValue<string>(), Is.EqualTo("0xcafef00d"));
    }

    [Test]
    public void SubsectionWithAnotherNameIsAnError()
    {
        StreamBytes stream = DeviceSection("dev/other").EofAndVmdesc(DeviceJson);

        AnalysisRun run = AnalysisRun.Of(stream.ToArray());

        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.BadStream));
        Assert.That(run.ErrorMessage, Does.Contain("expected subsection 'dev/extra', found 'dev/other'"));
    }

    [Test]
    public void LongBuffersAreShortened()
    {
        const string json = "{\"devices\": [{\"name\": \"big\", \"instance_id\": 0, \"fields\": [{\"name\": \"blob\", \"type\": \"buffer\", \"size\": 5000}]}]}";
        var stream = new StreamBytes().Preamble().NamedSection(0x04, 1, "big", 0, 1).Fill(5000, 0xaa).Footer(1).EofAndVmdesc(json);

        AnalysisRun run = Run(stream);

        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.Success), run.Text);
        string value = run.Sections[0]!["state"]!["fields"]![0]!["value"]!.GetValue<string>();
        Assert.That(value, Does.EndWith($"... ({5000 - 256} more bytes)"));
    }

    [TestCase("{\"name\": \"blob\", \"type\": \"buffer\", \"size\": 1000000000000000}", "larger than the")]
    [TestCase("{\"name\": \"blob\", \"array_len\": 2000000000, \"type\": \"uint8\", \"size\": 1}", "array_len 2000000000")]
    [TestCase("{\"name\": \"blob\", \"array_len\": 2000000000, \"type\": \"struct\", \"struct\": {\"fields\": []}}", "array_len 2000000000")]
    [TestCase("{\"name\": \"blob\", \"type\": \"buffer\", \"size\": \"big\"}", "not an integer")]
    [TestCase("{\"name\": \"blob\", \"type\": \"buffer\"}", "no \"size\"")]
    [TestCase("{\"type\": \"buffer\", \"size\": 1}", "without a \"name\"")]
    public void AbsurdOrBrokenDescriptionsAreErrors(string field, string expected)
    {
        string json = "{\"devices\": [{\"name\": \"big\", \"instance_id\": 0, \"fields\": [" + field + "]}]}";
        var stream = new StreamBytes().Preamble();
        int body = stream.Length + 1 + 4 + 4 + 4 + 4;
        stream.NamedSection(0x04, 1, "big", 0, 1).Fill(16, 0).Footer(1).EofAndVmdesc(json);

        AnalysisRun run = Run(stream);

        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.BadStream), run.Text);
        Assert.That(run.ErrorMessage, Does.Contain(expected));
        Assert.That(run.ErrorOffset, Is.EqualTo(body));
    }

    [Test]
    public void BadStringEscapeInTheVmdescIsAnError()
    {
        const string json = "{\"devices\": [{\"name\": \"\\ud800\", \"instance_id\": 0, \"fields\": []}]}";
        var stream = new StreamBytes().Preamble().NamedSection(0x04, 1, "big", 0, 1).Footer(1).EofAndVmdesc(json);

        AnalysisRun run = Run(stream);

        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.BadStream), run.Text);
        Assert.That(run.ErrorMessage, Does.Contain("vmdesc"));
    }
}
