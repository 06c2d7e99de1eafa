using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary><c>minivmm analyze</c> as a real process on QEMU 7.2's fixture stream and on damaged copies.</summary>
[TestFixture]
public sealed class AnalyzeProcessTests
{
    private static string Fixture => QemuFixtures.Qemu72Stream;

    [Test]
    public async Task Lists_the_fixture_sections_with_QEMUs_ids_and_offsets()
    {
        (int exit, JsonObject json, string stderr) = await AnalyzeAsync(Fixture);

        Assert.That(exit, Is.EqualTo(0), stderr);
        var sections = json["sections"]!.AsArray().Select(s => (
            Type: s!["type"]!.GetValue<string>(),
            Offset: s["offset"]!.GetValue<long>(),
            Id: s["section_id"]!.GetValue<long>(),
            IdStr: s["idstr"]!.GetValue<string>(),
            Instance: s["instance_id"]!.GetValue<long>(),
            Version: s["version_id"]!.GetValue<long>())).ToList();
        Assert.That(sections, Is.EqualTo(new[]
        {
            ("START", 0x11L, 2L, "ram", 0L, 4L),
            ("PART", 0x43L, 2L, "ram", 0L, 4L),
            ("END", 0x035048L, 2L, "ram", 0L, 4L),
            ("FULL", 0x03505aL, 0L, "timer", 0L, 2L),
            ("FULL", 0x03508aL, 4L, "globalstate", 0L, 1L),
        }));
        JsonNode part = json["sections"]![1]!;
        Assert.That(part["ram"]!["records"]!["page"]!.GetValue<long>(), Is.EqualTo(17));
        Assert.That(part["ram"]!["records"]!["zero"]!.GetValue<long>(), Is.EqualTo(16367));
    }

    [Test]
    public async Task Dump_desc_prints_the_vmdesc()
    {
        (int exit, JsonObject json, _) = await AnalyzeAsync(Fixture, "--dump", "desc");

        Assert.That(exit, Is.EqualTo(0));
        Assert.That(json["page_size"]!.GetValue<long>(), Is.EqualTo(4096));
        Assert.That(json["devices"]!.AsArray().Select(d => d!["name"]!.GetValue<string>()), Is.EqualTo(new[] { "timer", "globalstate" }));
    }

    [Test]
    public async Task A_damaged_stream_prints_what_was_parsed_and_the_error_offset_and_exits_non_zero()
    {
        using var directory = new TemporaryDirectory();
        string damaged = directory.File("damaged.bin");
        byte[] bytes = await File.ReadAllBytesAsync(Fixture);
        bytes[0x03505a] = 0x09; // the timer section's type byte
        await File.WriteAllBytesAsync(damaged, bytes);

        (int exit, JsonObject json, _) = await AnalyzeAsync(damaged);

        Assert.That(exit, Is.Not.EqualTo(0));
        Assert.That(json["sections"]!.AsArray(), Has.Count.EqualTo(3));
        Assert.That(json["error"]!["offset"]!.GetValue<long>(), Is.EqualTo(0x03505a));
    }

    private static async Task<(int Exit, JsonObject Json, string Stderr)> AnalyzeAsync(params string[] arguments)
    {
        await using MiniVmmProcess process = MiniVmmProcess.Start(["analyze", .. arguments]);
        int exit = await process.WaitForExitAsync();
        var json = JsonNode.Parse(process.Stdout)!.AsObject();
        return (exit, json, process.Stderr);
    }
}
