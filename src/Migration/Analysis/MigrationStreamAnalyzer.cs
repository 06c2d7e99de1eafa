using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// Walks a QEMU-format migration stream from its first byte to its last and records what it
/// holds (<see cref="StreamAnalysis"/>), like QEMU's analyze-migration.py. Sections carry no
/// length, so each body is parsed: RAM records for the <c>ram</c> entry, VMState fields guided by
/// the vmdesc trailer (found first, by scanning backwards from the end) for FULL sections.
/// A problem stops the walk and is recorded with its offset; nothing is thrown for bad streams.
/// </summary>
public sealed class MigrationStreamAnalyzer
{
    private const string RamIdStr = "ram";
    private const uint RamInstance = 0;
    private const string IgnoreSharedCapability = "x-ignore-shared";

    private readonly MigrationStreamReader _reader;
    private readonly StreamAnalysis _analysis;
    private readonly VmDescriptionSearchResult _description;
    private readonly int _pageSize;
    private readonly Dictionary<uint, AnalyzedSection> _liveStarts = [];
    private readonly Dictionary<uint, RamSectionParser> _ramParsers = [];

    private MigrationStreamAnalyzer(MigrationStreamReader reader, long streamLength, VmDescriptionSearchResult description)
    {
        _reader = reader;
        _analysis = new StreamAnalysis(streamLength) { VmDescription = description.Trailer };
        _description = description;
        _pageSize = description.Trailer?.PageSize ?? StreamHeader.TargetPageSize;
    }

    /// <summary>
    /// Walks <paramref name="seekable"/> from offset 0. The stream is left open; its position
    /// is left anywhere.
    /// </summary>
    public static StreamAnalysis Analyze(System.IO.Stream seekable)
    {
        ArgumentNullException.ThrowIfNull(seekable);
        if (!seekable.CanSeek || !seekable.CanRead)
        {
            throw new ArgumentException("the stream must be readable and seekable", nameof(seekable));
        }

        VmDescriptionSearchResult description = VmDescriptionLocator.Locate(seekable);
        seekable.Position = 0;
        using var reader = new MigrationStreamReader(seekable, leaveOpen: true);
        var analyzer = new MigrationStreamAnalyzer(reader, seekable.Length, description);
        analyzer.Run();
        return analyzer._analysis;
    }

    /// <summary>
    /// Finds and parses only the vmdesc trailer of <paramref name="seekable"/>, after checking
    /// the file header. Throws <see cref="StreamAnalysisException"/> when there is none or it is damaged.
    /// </summary>
    public static VmDescriptionTrailer FindDescription(System.IO.Stream seekable)
    {
        ArgumentNullException.ThrowIfNull(seekable);
        if (!seekable.CanSeek || !seekable.CanRead)
        {
            throw new ArgumentException("the stream must be readable and seekable", nameof(seekable));
        }

        seekable.Position = 0;
        using (var reader = new MigrationStreamReader(seekable, leaveOpen: true, bufferSize: MigrationStreamReader.MinBufferSize))
        {
            ReadHeader(reader, null);
        }

        VmDescriptionSearchResult found = VmDescriptionLocator.Locate(seekable);
        return found.Trailer ?? throw found.Problem!;
    }

    private void Run()
    {
        try
        {
            ReadHeader(_reader, _analysis);
            Walk();
        }
        catch (MigrationStreamException ex)
        {
            _analysis.Error = ex;
        }
        catch (Exception ex)
        {
            _analysis.Error = new StreamAnalysisException($"internal analyzer error: {ex.GetType().Name}: {ex.Message}", _reader.Offset, ex);
        }
    }

    private static void ReadHeader(MigrationStreamReader reader, StreamAnalysis? analysis)
    {
        uint magic = reader.GetBe32();
        if (analysis is not null)
        {
            analysis.Magic = magic;
        }

        if (magic != StreamHeader.Magic)
        {
            throw new StreamAnalysisException(
                $"bad file magic 0x{magic:x8}, expected 0x{StreamHeader.Magic:x8} (\"QEVM\")", 0);
        }

        uint version = reader.GetBe32();
        if (analysis is not null)
        {
            analysis.Version = version;
        }

        if (version != StreamHeader.Version)
        {
            throw new StreamAnalysisException(
                $"unsupported stream version {version}, expected {StreamHeader.Version}", sizeof(uint));
        }
    }

    private void Walk()
    {
        while (true)
        {
            long at = _reader.Offset;
            int next = _reader.PeekByte();
            if (next < 0)
            {
                throw new StreamAnalysisException("the stream ends without an EOF marker (0x00)", at);
            }

            _reader.GetByte();
            var type = (SectionType)next;
            switch (type)
            {
                case SectionType.Eof:
                    _analysis.EofOffset = at;
                    ReadTrailer();
                    return;
                case SectionType.Configuration:
                    ReadConfiguration(at);
                    break;
                case SectionType.Start or SectionType.Part or SectionType.End or SectionType.Full:
                    ReadSection(type, at);
                    break;
                case SectionType.Command:
                    ReadCommand(at);
                    break;
                case SectionType.VmDescription:
                    throw new StreamAnalysisException("VMDESCRIPTION (0x06) before the EOF marker", at);
                case SectionType.Subsection or SectionType.Footer:
                    throw new StreamAnalysisException(
                        $"unexpected section type 0x{next:x2} ({SectionTypeNames.Of(type)}) outside a section", at);
                default:
                    throw new StreamAnalysisException($"unknown section type 0x{next:x2}", at);
            }
        }
    }

    private void ReadConfiguration(long at)
    {
        if (_analysis.ConfigurationOffset >= 0)
        {
            throw new StreamAnalysisException(
                $"second configuration section (the first is at 0x{_analysis.ConfigurationOffset:x})", at);
        }

        _analysis.ConfigurationOffset = at;
        try
        {
            _analysis.Configuration = MachineConfiguration.Read(_reader);
        }
        catch (MigrationStreamException ex)
        {
            throw Within($"configuration section (at 0x{at:x})", ex);
        }

        _analysis.ConfigurationSize = _reader.Offset - at;
    }

    private void ReadSection(SectionType type, long at)
    {
        var section = new AnalyzedSection(type, at);
        _analysis.Add(section);
        try
        {
            uint id = _reader.GetBe32();
            section.SectionId = id;
            if (type is SectionType.Start or SectionType.Full)
            {
                section.IdStr = _reader.GetCountedString();
                section.InstanceId = _reader.GetBe32();
                section.VersionId = _reader.GetBe32();
            }
            else if (_liveStarts.TryGetValue(id, out AnalyzedSection? start))
            {
                section.IdStr = start.IdStr;
                section.InstanceId = start.InstanceId;
                section.VersionId = start.VersionId;
            }
            else
            {
                throw new StreamAnalysisException("no START section with this id came before it", at);
            }

            switch (type)
            {
                case SectionType.Start:
                    StartLiveEntry(section, id, at);
                    ParseRam(section, _ramParsers[id]);
                    break;
                case SectionType.Part or SectionType.End:
                    ParseRam(section, _ramParsers[id]);
                    break;
                default:
                    DecodeFull(section, at);
                    break;
            }

            ReadFooter(section, id);
        }
        catch (MigrationStreamException ex)
        {
            throw Within($"{section.Describe()} (at 0x{at:x})", ex);
        }
    }

    private void StartLiveEntry(AnalyzedSection section, uint id, long at)
    {
        if (section.IdStr != RamIdStr || section.InstanceId != RamInstance)
        {
            throw new StreamAnalysisException(
                $"live entry '{section.IdStr}' instance {section.InstanceId} cannot be decoded: only '{RamIdStr}' is understood", at);
        }

        if (section.VersionId != RamSectionParser.SupportedVersion)
        {
            throw new StreamAnalysisException(
                $"RAM section version {section.VersionId} is not the supported {RamSectionParser.SupportedVersion}", at);
        }

        bool ignoreShared = _analysis.Configuration?.Capabilities.Contains(IgnoreSharedCapability) ?? false;
        _liveStarts[id] = section;
        _ramParsers[id] = new RamSectionParser(_reader, _analysis.StreamLength, _pageSize, ignoreShared);
    }

    private void ParseRam(AnalyzedSection section, RamSectionParser parser)
    {
        var summary = new RamSectionSummary();
        section.Ram = summary;
        try
        {
            parser.ParseBody(summary);
        }
        finally
        {
            _analysis.RamTotals.Add(summary.Records);
        }
    }

    private void DecodeFull(AnalyzedSection section, long at)
    {
        if (_description.Trailer is not { } trailer)
        {
            StreamAnalysisException problem = _description.Problem!;
            long offset = problem.Offset >= 0 && problem.Offset < _analysis.StreamLength ? problem.Offset : at;
            throw new StreamAnalysisException($"cannot be decoded without the vmdesc: {problem.Detail}", offset, problem);
        }

        string name = section.IdStr!;
        uint instance = section.InstanceId!.Value;
        var device = trailer.FindDevice(name, instance)
            ?? throw new StreamAnalysisException(
                $"is not described in the vmdesc (no device with name '{name}' and instance_id {instance})", at);
        section.State = new VmStateBodyDecoder(_reader, _analysis.StreamLength).DecodeDevice(device, name);
    }

    private void ReadFooter(AnalyzedSection section, uint id)
    {
        long at = _reader.Offset;
        byte marker = _reader.GetByte();
        if (marker != (byte)SectionType.Footer)
        {
            throw new StreamAnalysisException(
                $"expected the section footer (0x{(byte)SectionType.Footer:x2}), found byte 0x{marker:x2}", at);
        }

        uint footerId = _reader.GetBe32();
        if (footerId != id)
        {
            throw new StreamAnalysisException($"the section footer names section id {footerId}", at);
        }

        section.Size = _reader.Offset - section.Offset;
        section.Complete = true;
    }

    private void ReadCommand(long at)
    {
        var section = new AnalyzedSection(SectionType.Command, at);
        _analysis.Add(section);
        try
        {
            var command = (MigrationCommand)_reader.GetBe16();
            section.Command = command;
            long lengthAt = _reader.Offset;
            ushort length = _reader.GetBe16();
            section.CommandLength = length;
            if (command is MigrationCommand.Invalid or > MigrationCommand.SwitchoverStart)
            {
                throw new StreamAnalysisException($"unknown command 0x{(ushort)command:x} (length {length})", at);
            }

            RemainingBytes.Ensure(_reader, _analysis.StreamLength, length, "command payload", lengthAt);
            if (command == MigrationCommand.Packaged)
            {
                if (length != sizeof(uint))
                {
                    throw new StreamAnalysisException($"PACKAGED command with length {length}, expected {sizeof(uint)}", lengthAt);
                }

                long packageAt = _reader.Offset;
                uint package = _reader.GetBe32();
                RemainingBytes.Ensure(_reader, _analysis.StreamLength, package, "PACKAGED sub-stream", packageAt);
                section.PackageLength = package;
            }
            else
            {
                RemainingBytes.Skip(_reader, _analysis.StreamLength, length, "command payload");
            }

            section.Size = _reader.Offset - at;
            section.Complete = true;
        }
        catch (MigrationStreamException ex)
        {
            throw Within($"{section.Describe()} (at 0x{at:x})", ex);
        }
    }

    // After EOF: nothing, or the vmdesc reaching exactly to the end of the stream.
    private void ReadTrailer()
    {
        long at = _reader.Offset;
        if (_reader.PeekByte() < 0)
        {
            _analysis.VmDescription = null;
            return;
        }

        byte type = _reader.GetByte();
        if (type != (byte)SectionType.VmDescription)
        {
            throw new StreamAnalysisException(
                $"expected the vmdesc (0x{(byte)SectionType.VmDescription:x2}) or the end of the stream after EOF, found byte 0x{type:x2}", at);
        }

        uint length = _reader.GetBe32();
        if (_description.Trailer is { } located && located.Offset == at)
        {
            _reader.Skip(length);
            return;
        }

        RemainingBytes.Ensure(_reader, _analysis.StreamLength, length, "vmdesc", at);
        byte[] json = _reader.ReadBytes(length, "vmdesc JSON", VmDescriptionTrailer.MaxJsonLength);
        _analysis.VmDescription = VmDescriptionTrailer.Parse(at, json);
        if (!_reader.IsAtEnd)
        {
            throw new StreamAnalysisException(
                $"{RemainingBytes.After(_reader, _analysis.StreamLength)} bytes follow the vmdesc", _reader.Offset);
        }
    }

    private StreamAnalysisException Within(string where, MigrationStreamException inner) =>
        new($"{where}: {inner.Detail}", inner.Offset >= 0 ? inner.Offset : _reader.Offset, inner);
}
