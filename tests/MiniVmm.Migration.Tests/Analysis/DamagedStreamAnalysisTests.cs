using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using MiniVmm.Migration.Analysis;

namespace MiniVmm.Migration.Tests.Analysis;

/// <summary>
/// Damaged copies of the fixture: the output stays valid JSON with the parsed prefix and an
/// error naming the offset, and the exit code is non-zero.
/// </summary>
[TestFixture]
public sealed class DamagedStreamAnalysisTests
{
    private const int VmDescOffset = 0x035111;

    private static byte[] Fixture() => AnalysisRun.FixtureBytes();

    private static byte[] Cut(int length) => Fixture()[..length];

    private static AnalysisRun Failing(byte[] stream, AnalysisDumpMode mode = AnalysisDumpMode.State)
    {
        AnalysisRun run = AnalysisRun.Of(stream, mode);
        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.BadStream), run.Text);
        Assert.That(run.Json["error"], Is.Not.Null, run.Text);
        return run;
    }

    private static string[] Types(AnalysisRun run) => run.Sections.Select(s => s!["type"]!.GetValue<string>()).ToArray();

    [Test]
    public void TruncatedInsideTheHeader()
    {
        AnalysisRun run = Failing(Cut(6));

        Assert.That(run.ErrorOffset, Is.EqualTo(4));
        Assert.That(run.ErrorMessage, Does.Contain("unexpected end of stream"));
        Assert.That(run.Json["header"]!["magic"]!.GetValue<string>(), Is.EqualTo("0x5145564d"));
        Assert.That(run.Sections, Is.Empty);
    }

    [Test]
    public void TruncatedInsideTheConfiguration()
    {
        AnalysisRun run = Failing(Cut(0x0f));

        Assert.That(run.ErrorOffset, Is.EqualTo(0x0d), "the 4-byte machine name starts at 0x0d");
        Assert.That(run.ErrorMessage, Does.Contain("configuration section"));
        Assert.That(run.Json["header"]!["version"]!.GetValue<int>(), Is.EqualTo(3));
        Assert.That(run.Json["configuration"]!["complete"]!.GetValue<bool>(), Is.False);
    }

    [Test]
    public void TruncatedInsideAPage()
    {
        AnalysisRun run = Failing(Cut(0x100));

        Assert.That(run.ErrorOffset, Is.EqualTo(0x54), "the first page's data starts after the word and \"ram\"");
        Assert.That(run.ErrorMessage, Does.Contain("PART section id 2 'ram'"));
        Assert.That(Types(run), Is.EqualTo(new[] { "START", "PART" }));
        Assert.That(run.Sections[0]!["size"]!.GetValue<long>(), Is.EqualTo(0x32));
        Assert.That(run.Sections[1]!["complete"]!.GetValue<bool>(), Is.False);
        Assert.That(run.Json["configuration"]!["machine"]!.GetValue<string>(), Is.EqualTo("none"));
    }

    [Test]
    public void TruncatedInsideTheVmdesc()
    {
        AnalysisRun run = Failing(Cut(VmDescOffset + 5 + 100));

        Assert.That(run.ErrorOffset, Is.EqualTo(VmDescOffset));
        Assert.That(run.ErrorMessage, Does.Contain("vmdesc length 486").And.Contain("only 100 are left"));
        Assert.That(run.ErrorMessage, Does.Contain("'timer'"), "the section that needed it is named");
        Assert.That(Types(run), Is.EqualTo(new[] { "START", "PART", "END", "FULL" }));
        Assert.That(run.Sections[3]!["complete"]!.GetValue<bool>(), Is.False);
        Assert.That(run.Json["totals"]!["ram"]!["page"]!.GetValue<long>(), Is.EqualTo(17));
    }

    [Test]
    public void WrongMagic()
    {
        byte[] stream = Fixture();
        stream[0] = 0x52;

        AnalysisRun run = Failing(stream);

        Assert.That(run.ErrorOffset, Is.EqualTo(0));
        Assert.That(run.ErrorMessage, Does.Contain("bad file magic 0x5245564d"));
        Assert.That(run.Json["header"]!["magic"]!.GetValue<string>(), Is.EqualTo("0x5245564d"));
        Assert.That(run.Sections, Is.Empty);
    }

    [Test]
    public void UnknownSectionType()
    {
        byte[] stream = Fixture();
        stream[0x43] = 0x09;

        AnalysisRun run = Failing(stream);

        Assert.That(run.ErrorOffset, Is.EqualTo(0x43));
        Assert.That(run.ErrorMessage, Does.Contain("unknown section type 0x09"));
        Assert.That(Types(run), Is.EqualTo(new[] { "START" }));
    }

    [Test]
    public void VmdescLengthOfAllOnes()
    {
        byte[] stream = Fixture();
        BinaryPrimitives.WriteUInt32BigEndian(stream.AsSpan(VmDescOffset + 1), 0xFFFFFFFF);

        AnalysisRun run = Failing(stream);

        Assert.That(run.ErrorOffset, Is.EqualTo(VmDescOffset));
        Assert.That(run.ErrorMessage, Does.Contain("vmdesc length 4294967295").And.Contain("only 486 are left"));
        Assert.That(Types(run), Is.EqualTo(new[] { "START", "PART", "END", "FULL" }));
        Assert.That(run.Json["vmdesc"], Is.Null);
    }

    [Test]
    public void VmdescLengthOfAllOnesInTheDescDump()
    {
        byte[] stream = Fixture();
        BinaryPrimitives.WriteUInt32BigEndian(stream.AsSpan(VmDescOffset + 1), 0xFFFFFFFF);

        AnalysisRun run = Failing(stream, AnalysisDumpMode.Desc);

        Assert.That(run.ErrorOffset, Is.EqualTo(VmDescOffset));
    }

    [Test]
    public void DescDumpWithBadMagic()
    {
        byte[] stream = Fixture();
        stream[3] = 0;

        AnalysisRun run = Failing(stream, AnalysisDumpMode.Desc);

        Assert.That(run.ErrorOffset, Is.EqualTo(0));
    }

    [Test]
    public void VmdescThatIsNotJson()
    {
        byte[] stream = Fixture();
        int colon = Array.IndexOf(stream, (byte)':', VmDescOffset + 5);
        stream[colon] = (byte)'#';

        AnalysisRun run = Failing(stream);

        Assert.That(run.ErrorMessage, Does.Contain("not valid JSON"));
        Assert.That(run.ErrorOffset, Is.EqualTo(colon));
    }

    [Test]
    public void FullSectionNotDescribedInTheVmdesc()
    {
        byte[] stream = Fixture();
        byte[] name = Encoding.ASCII.GetBytes("\"name\": \"globalstate\"");
        int at = stream.AsSpan(VmDescOffset).IndexOf(name) + VmDescOffset;
        stream[at + name.Length - 2] = (byte)'X';

        AnalysisRun run = Failing(stream);

        Assert.That(run.ErrorOffset, Is.EqualTo(0x03508a));
        Assert.That(run.ErrorMessage, Does.Contain("'globalstate'").And.Contain("not described in the vmdesc"));
        Assert.That(Types(run), Is.EqualTo(new[] { "START", "PART", "END", "FULL", "FULL" }));
        Assert.That(run.Sections[3]!["state"]!["fields"]!.AsArray(), Has.Count.EqualTo(3));
        Assert.That(run.Json["vmdesc"]!["offset"]!.GetValue<long>(), Is.EqualTo(VmDescOffset));
    }

    [Test]
    public void PartSectionWithoutStart()
    {
        byte[] stream = Fixture();
        stream[0x47] = 3;

        AnalysisRun run = Failing(stream);

        Assert.That(run.ErrorOffset, Is.EqualTo(0x43));
        Assert.That(run.ErrorMessage, Does.Contain("PART section id 3").And.Contain("no START"));
    }

    [Test]
    public void FooterWithTheWrongId()
    {
        byte[] stream = Fixture();
        stream[0x3e + 4] = 7;

        AnalysisRun run = Failing(stream);

        Assert.That(run.ErrorOffset, Is.EqualTo(0x3e));
        Assert.That(run.ErrorMessage, Does.Contain("footer names section id 7"));
    }

    [Test]
    public void PackagedCommandLongerThanTheStream()
    {
        byte[] original = Fixture();
        byte[] command = [0x08, 0x00, 0x07, 0x00, 0x04, 0xff, 0xff, 0xff, 0xff];
        byte[] stream = [.. original[..0x11], .. command, .. original[0x11..]];

        AnalysisRun run = Failing(stream);

        Assert.That(run.ErrorOffset, Is.EqualTo(0x11 + 5));
        Assert.That(run.ErrorMessage, Does.Contain("PACKAGED").And.Contain("4294967295"));
        Assert.That(run.Sections[0]!["type"]!.GetValue<string>(), Is.EqualTo("COMMAND"));
        Assert.That(run.Sections[0]!["command"]!.GetValue<string>(), Is.EqualTo("PACKAGED"));
    }

    [Test]
    public void CommandsAreListed()
    {
        byte[] original = Fixture();
        byte[] commands = [0x08, 0x00, 0x01, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01];
        byte[] stream = [.. original[..0x11], .. commands, .. original[0x11..]];

        AnalysisRun run = AnalysisRun.Of(stream);

        Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.Success), run.Text);
        Assert.That(Types(run), Is.EqualTo(new[] { "COMMAND", "COMMAND", "START", "PART", "END", "FULL", "FULL" }));
        Assert.That(run.Sections[1]!["command"]!.GetValue<string>(), Is.EqualTo("PING"));
        Assert.That(run.Sections[1]!["size"]!.GetValue<long>(), Is.EqualTo(9));
        Assert.That(run.Sections[2]!["offset"]!.GetValue<long>(), Is.EqualTo(0x11 + commands.Length));
        Assert.That(run.Json["totals"]!["commands"]!.GetValue<int>(), Is.EqualTo(2));
    }

    public static IEnumerable<int> CutPoints()
    {
        int length = new FileInfo(AnalysisRun.FixturePath).Exists ? (int)new FileInfo(AnalysisRun.FixturePath).Length : 0;
        var points = new SortedSet<int>();
        for (int i = 0; i < 0x60; i++)
        {
            points.Add(i);
        }

        for (int i = 0; i < length; i += 4999)
        {
            points.Add(i);
        }

        for (int i = 0x035030; i < length; i += 7)
        {
            points.Add(i);
        }

        return points;
    }

    [Test]
    public void EveryTruncationGivesJsonAndAnErrorInsideTheStream()
    {
        byte[] fixture = Fixture();
        foreach (int cut in CutPoints())
        {
            AnalysisRun run = AnalysisRun.Of(fixture[..cut]);

            Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.BadStream), $"cut at {cut}: {run.Text}");
            Assert.That(run.ErrorOffset, Is.InRange(0, cut), $"cut at {cut}: {run.Text}");
        }
    }

    [Test]
    public void DamagedStreamsNeverThrow()
    {
        byte[] fixture = Fixture();
        var random = new Random(7);
        for (int round = 0; round < 300; round++)
        {
            byte[] stream = (byte[])fixture.Clone();
            int at = round < 150 ? random.Next(0, 0x60) : random.Next(0x035040, stream.Length);
            stream[at] = (byte)random.Next(256);

            AnalysisRun run = AnalysisRun.Of(stream);

            if (run.ExitCode != AnalysisExitCode.Success)
            {
                Assert.That(run.ExitCode, Is.EqualTo(AnalysisExitCode.BadStream), run.Text);
                Assert.That(run.Json["error"]!["message"], Is.Not.Null);
            }
        }
    }
}
