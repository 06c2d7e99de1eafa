using MiniVmm.Migration.Analysis;

namespace MiniVmm.Migration.Tests.Analysis;

/// <summary>RAM section bodies of hand-made streams: record kinds, block lists and the errors for bad records.</summary>
[TestFixture]
public sealed class RamRecordAnalysisTests
{
    private const ulong PageFlag = 0x08;
    private const ulong ZeroFlag = 0x02;
    private const ulong ContinueFlag = 0x20;
    private const ulong EosFlag = 0x10;

    private static StreamAnalysis Analyze(StreamBytes stream) => MigrationStreamAnalyzer.Analyze(new MemoryStream(stream.ToArray()));

    private static StreamBytes RamPart(StreamBytes stream) => stream.IdSection(0x02, 2);

    [Test]
    public void StreamWithoutFullSectionsNeedsNoVmdesc()
    {
        var stream = new StreamBytes().Preamble().RamStart(0x3000);
        RamPart(stream).Be64(0x0000 | PageFlag).Counted("ram").Fill(4096, 0xab)
            .Be64(0x1000 | ZeroFlag | ContinueFlag).U8(0)
            .Be64(0x2000 | PageFlag | ContinueFlag).Fill(4096, 0xcd)
            .Be64(EosFlag).Footer(2);
        stream.IdSection(0x03, 2).Be64(0x1000 | ZeroFlag | ContinueFlag).U8(0).Be64(EosFlag).Footer(2).U8(0x00);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error, Is.Null);
        Assert.That(analysis.VmDescription, Is.Null);
        Assert.That(analysis.EofOffset, Is.EqualTo(stream.Length - 1));
        Assert.That(analysis.Sections[1].Ram!.Records.Pages, Is.EqualTo(2));
        Assert.That(analysis.Sections[1].Ram!.Records.ZeroPages, Is.EqualTo(1));
        Assert.That(analysis.Sections[2].Ram!.Records.ZeroPages, Is.EqualTo(1), "CONTINUE carries over into END");
        Assert.That(analysis.RamTotals.ZeroPages, Is.EqualTo(2));
        Assert.That(analysis.RamTotals.Pages, Is.EqualTo(2));
    }

    [Test]
    public void XIgnoreSharedBlockListCarriesAddresses()
    {
        var stream = new StreamBytes().Preamble("x-ignore-shared").RamStart(0x2000, guestAddress: 0x100000).U8(0x00);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error, Is.Null);
        Assert.That(analysis.Configuration!.Capabilities, Is.EqualTo(new[] { "x-ignore-shared" }));
        Assert.That(analysis.Sections[0].Ram!.Blocks, Is.EqualTo(new[] { new RamBlockEntry("ram", 0x2000, 0x100000) }));
    }

    [Test]
    public void XbzrleAndCompressedPagesAreCounted()
    {
        var stream = new StreamBytes().Preamble().RamStart(0x2000);
        RamPart(stream).Be64(0x0000 | 0x40).Counted("ram").U8(0x01).Be16(3).Fill(3, 1)
            .Be64(0x1000 | 0x100 | ContinueFlag).Be32(5).Fill(5, 2)
            .Be64(0x200).Be64(EosFlag).Footer(2).U8(0x00);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error, Is.Null);
        RamRecordCounts records = analysis.Sections[1].Ram!.Records;
        Assert.That((records.XbzrlePages, records.CompressedPages, records.MultifdFlushRecords), Is.EqualTo((1L, 1L, 1L)));
    }

    [Test]
    public void ContinueWithoutANamedBlockIsAnError()
    {
        var stream = new StreamBytes().Preamble().RamStart(0x2000);
        int record = stream.Length + 5;
        RamPart(stream).Be64(ZeroFlag | ContinueFlag).U8(0).Be64(EosFlag).Footer(2).U8(0);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error!.Offset, Is.EqualTo(record));
        Assert.That(analysis.Error.Message, Does.Contain("CONTINUE"));
    }

    [Test]
    public void UnknownFlagCombinationIsAnError()
    {
        var stream = new StreamBytes().Preamble().RamStart(0x2000);
        int record = stream.Length + 5;
        RamPart(stream).Be64(ZeroFlag | PageFlag).Counted("ram").U8(0);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error!.Offset, Is.EqualTo(record));
        Assert.That(analysis.Error.Message, Does.Contain("unknown combination of flags 0xa"));
    }

    [Test]
    public void PageOutsideItsBlockIsAnError()
    {
        var stream = new StreamBytes().Preamble().RamStart(0x2000);
        int record = stream.Length + 5;
        RamPart(stream).Be64(0x2000 | ZeroFlag).Counted("ram").U8(0);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error!.Offset, Is.EqualTo(record));
        Assert.That(analysis.Error.Message, Does.Contain("outside block 'ram'"));
    }

    [Test]
    public void UnknownBlockNameIsAnError()
    {
        var stream = new StreamBytes().Preamble().RamStart(0x2000);
        RamPart(stream).Be64(ZeroFlag).Counted("pc.ram").U8(0);

        Assert.That(Analyze(stream).Error!.Message, Does.Contain("'pc.ram'"));
    }

    [Test]
    public void CompressedPageLongerThanTheStreamIsAnError()
    {
        var stream = new StreamBytes().Preamble().RamStart(0x2000);
        RamPart(stream).Be64(0x100).Counted("ram");
        int lengthField = stream.Length;
        stream.Be32(0x7fffffff).Fill(10, 0);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error!.Offset, Is.EqualTo(lengthField));
        Assert.That(analysis.Error.Message, Does.Contain("length 2147483647 is larger than the 10 bytes left"));
    }

    [Test]
    public void BlockListLongerThanTheTotalIsAnError()
    {
        var stream = new StreamBytes().Preamble().NamedSection(0x01, 2, "ram", 0, 4).Be64(0x1000 | 0x04);
        int entry = stream.Length;
        stream.Counted("ram").Be64(0x2000).Be64(EosFlag);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error!.Offset, Is.EqualTo(entry));
        Assert.That(analysis.Error.Message, Does.Contain("RAM block 'ram'"));
    }

    [Test]
    public void A_live_section_with_no_decoder_and_no_footer_after_it_is_named_in_the_error_at_its_body()
    {
        var stream = new StreamBytes().Preamble();
        stream.NamedSection(0x01, 1, "block", 0, 1);
        int body = stream.Length;
        stream.Be64(0);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error!.Offset, Is.EqualTo(body));
        Assert.That(analysis.Error.Message, Does.Contain("no footer of section 1 follows"));
        Assert.That(analysis.Error.Message, Does.Contain("'block'"));
        Assert.That(analysis.Sections[0].IdStr, Is.EqualTo("block"));
    }

    [Test]
    public void RamVersionOtherThanFourIsAnError()
    {
        var stream = new StreamBytes().Preamble();
        stream.NamedSection(0x01, 2, "ram", 0, 5).Be64(0x04);

        Assert.That(Analyze(stream).Error!.Message, Does.Contain("RAM section version 5"));
    }

    [Test]
    public void StreamWithoutEofIsAnError()
    {
        var stream = new StreamBytes().Preamble().RamStart(0x1000);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error!.Offset, Is.EqualTo(stream.Length));
        Assert.That(analysis.Error.Message, Does.Contain("without an EOF marker"));
        Assert.That(analysis.Sections[0].Complete, Is.True);
    }

    [Test]
    public void BytesAfterTheVmdescAreAnError()
    {
        var stream = new StreamBytes().Preamble().RamStart(0x1000).EofAndVmdesc("{\"page_size\": 4096, \"devices\": []}").Fill(3, 0x20);

        StreamAnalysis analysis = Analyze(stream);

        Assert.That(analysis.Error!.Offset, Is.EqualTo(stream.Length - 3));
        Assert.That(analysis.Error.Message, Does.Contain("3 bytes follow the vmdesc"));
    }
}
