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
    private readonly IReadOnlyList<IStreamSectionDecoder> _decoders;

    private MigrationStreamAnalyzer(
        MigrationStreamReader reader, long streamLength, VmDescriptionSearchResult description, IReadOnlyList<IStreamSectionDecoder> decoders)
    {
        _decoders = decoders;
        _reader = reader;
        _analysis = new StreamAnalysis(streamLength) { VmDescription = description.Trailer };
        _description = description;
        _pageSize = description.Trailer?.PageSize ?? StreamHeader.TargetPageSize;
    }

    /// <summary>
    /// Walks <paramref name="seekable"/> from offset 0. The stream is left open; its position
    /// is left anywhere. <paramref name="decoders"/> read the bodies of sections other than RAM
    /// and VMState devices (VFIO, the guest harness...); a section nobody decodes is skipped by
    /// its footer when the stream has footers.
    /// </summary>
    public static StreamAnalysis Analyze(System.IO.Stream seekable, IReadOnlyList<IStreamSectionDecoder>? decoders = null)
    {
        ArgumentNullException.ThrowIfNull(seekable);
        if (!seekable.CanSeek || !seekable.CanRead)
        {
            throw new ArgumentException("the stream must be readable and seekable", nameof(seekable));
        }

        VmDescriptionSearchResult description = VmDescriptionLocator.Locate(seekable);
        seekable.Position = 0;
        using var reader = new MigrationStreamReader(seekable, leaveOpen: true);
        var analyzer = new MigrationStreamAnalyzer(reader, seekable.Length, description, decoders ?? []);
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

            if (type == SectionType.Start)
            {
                StartLiveEntry(section, id, at);
            }

            IStreamSectionDecoder? decoder = _decoders.FirstOrDefault(d => d.Decodes(section.IdStr!));
            if (type != SectionType.Full && _ramParsers.TryGetValue(id, out RamSectionParser? ram))
            {
                ParseRam(section, ram);
            }
            else if (decoder is not null)
            {
                // A decoder knows its device's format better than a vmdesc entry that only says "data".
                section.Decoded = decoder.DecodeBody(_reader, type, section.VersionId!.Value, _analysis.StreamLength - _reader.Offset);
            }
            else if (type == SectionType.Full && DescribedFields(section) is { } device)
            {
                section.State = new VmStateBodyDecoder(_reader, _analysis.StreamLength).DecodeDevice(device, section.IdStr!);
            }
            else
            {
                SkipToFooter(section, id, at);
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
        _liveStarts[id] = section;
        if (section.IdStr != RamIdStr || section.InstanceId != RamInstance)
        {
            return;
        }

        if (section.VersionId != RamSectionParser.SupportedVersion)
        {
            throw new StreamAnalysisException(
                $"RAM section version {section.VersionId} is not the supported {RamSectionParser.SupportedVersion}", at);
        }

        bool ignoreShared = _analysis.Configuration?.Capabilities.Contains(IgnoreSharedCapability) ?? false;
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

    /// <summary>
    /// The vmdesc entry of a FULL section that VMState fields describe, or null when the entry
    /// has no fields (a handler's save_state, like VFIO's config or the harness state).
    /// </summary>
    private System.Text.Json.Nodes.JsonObject? DescribedFields(AnalyzedSection section)
    {
        string name = section.IdStr!;
        uint instance = section.InstanceId!.Value;
        if (_description.Trailer is not { } trailer)
        {
            if (_decoders.Any(d => d.Decodes(name)))
            {
                return null;
            }

            StreamAnalysisException problem = _description.Problem!;
            long offset = problem.Offset >= 0 && problem.Offset < _analysis.StreamLength ? problem.Offset : section.Offset;
            throw new StreamAnalysisException($"cannot be decoded without the vmdesc: {problem.Detail}", offset, problem);
        }

        var device = trailer.FindDevice(name, instance);
        if (device?["fields"] is System.Text.Json.Nodes.JsonArray)
        {
            return device;
        }

        if (device is null && !_decoders.Any(d => d.Decodes(name)))
        {
            throw new StreamAnalysisException(
                $"is not described in the vmdesc (no device with name '{name}' and instance_id {instance})", section.Offset);
        }

        return null;
    }

    /// <summary>
    /// Skips the body of a section nobody decodes: sections carry no length, so the body ends at
    /// the first footer of this section (0x7e, be32 section id) that is followed by a plausible
    /// next element (a section type, a command, EOF). Needs the stream to have footers.
    /// </summary>
    private void SkipToFooter(AnalyzedSection section, uint id, long at)
    {
        if (_analysis.Configuration is null)
        {
            throw new StreamAnalysisException(
                $"'{section.IdStr}' has no decoder, and without section footers its body cannot be skipped", at);
        }

        Span<byte> footer = stackalloc byte[5];
        footer[0] = (byte)SectionType.Footer;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(footer[1..], id);
        long start = _reader.Offset;
        while (true)
        {
            ReadOnlySpan<byte> ahead = _reader.Peek(6);
            if (ahead.Length < 5)
            {
                throw new StreamAnalysisException($"'{section.IdStr}' has no decoder and no footer of section {id} follows", start);
            }

            if (ahead[..5].SequenceEqual(footer) && (ahead.Length == 5 || IsPlausibleNext(ahead[5])))
            {
                section.Skipped = _reader.Offset - start;
                return;
            }

            _reader.Skip(1);
        }
    }

    private static bool IsPlausibleNext(byte next) => (SectionType)next is SectionType.Eof or SectionType.Start or SectionType.Part
        or SectionType.End or SectionType.Full or SectionType.Command or SectionType.VmDescription;

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
