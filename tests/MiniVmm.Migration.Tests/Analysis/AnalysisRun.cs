using System.Text.Json.Nodes;
using MiniVmm.Migration.Analysis;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Migration.Tests.Analysis;

/// <summary>Runs <see cref="AnalyzeCommand"/> over bytes and parses what it printed.</summary>
internal sealed record AnalysisRun(int ExitCode, string Text, JsonNode Json)
{
    public static string FixturePath => QemuFixtures.Qemu72Stream;

    public static byte[] FixtureBytes() => File.ReadAllBytes(FixturePath);

    public static AnalysisRun Of(byte[] stream, AnalysisDumpMode mode = AnalysisDumpMode.State)
    {
        var output = new StringWriter();
        int exitCode = AnalyzeCommand.Run(new MemoryStream(stream, writable: false), mode, output);
        string text = output.ToString();
        JsonNode? json = JsonNode.Parse(text);
        Assert.That(json, Is.Not.Null, "the output is JSON");
        return new AnalysisRun(exitCode, text, json!);
    }

    public JsonArray Sections => Json["sections"]!.AsArray();

    public JsonObject Error => Json["error"]!.AsObject();

    public long ErrorOffset => Error["offset"]!.GetValue<long>();

    public string ErrorMessage => Error["message"]!.GetValue<string>();
}
