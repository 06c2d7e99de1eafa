using System.Text.Json;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// Writes a <see cref="StreamAnalysis"/> as the JSON <c>minivmm analyze</c> prints: header,
/// configuration, sections in stream order, EOF offset, vmdesc, totals and, after a failure, an
/// "error" member with the message and the offset. Offsets and sizes are JSON numbers.
/// </summary>
public static class StreamAnalysisJson
{
    /// <summary>Writes the state dump: one JSON object.</summary>
    public static void WriteState(Utf8JsonWriter json, StreamAnalysis analysis)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(analysis);
        json.WriteStartObject();
        json.WriteNumber("stream_length", analysis.StreamLength);
        WriteHeader(json, analysis);
        WriteConfiguration(json, analysis);

        json.WriteStartArray("sections");
        foreach (AnalyzedSection section in analysis.Sections)
        {
            WriteSection(json, section);
        }

        json.WriteEndArray();

        if (analysis.EofOffset is { } eof)
        {
            json.WriteNumber("eof_offset", eof);
        }

        if (analysis.VmDescription is { } description)
        {
            json.WriteStartObject("vmdesc");
            json.WriteNumber("offset", description.Offset);
            json.WriteNumber("length", description.Length);
            json.WritePropertyName("json");
            description.Root.WriteTo(json);
            json.WriteEndObject();
        }

        json.WriteStartObject("totals");
        json.WriteNumber("sections", analysis.Sections.Count(s => s.Type != SectionType.Command));
        json.WriteNumber("commands", analysis.Sections.Count(s => s.Type == SectionType.Command));
        json.WritePropertyName("ram");
        WriteRecords(json, analysis.RamTotals);
        json.WriteEndObject();

        if (analysis.Error is { } error)
        {
            WriteErrorMember(json, error);
        }

        json.WriteEndObject();
    }

    /// <summary>Writes the description dump: the vmdesc JSON as it is in the stream.</summary>
    public static void WriteDescription(Utf8JsonWriter json, VmDescriptionTrailer description)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(description);
        description.Root.WriteTo(json);
    }

    /// <summary>Writes <c>{"error": {...}}</c> alone, for failures before any analysis exists.</summary>
    public static void WriteFailure(Utf8JsonWriter json, MigrationStreamException error)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(error);
        json.WriteStartObject();
        WriteErrorMember(json, error);
        json.WriteEndObject();
    }

    private static void WriteErrorMember(Utf8JsonWriter json, MigrationStreamException error)
    {
        json.WriteStartObject("error");
        json.WriteString("message", error.Message);
        if (error.Offset >= 0)
        {
            json.WriteNumber("offset", error.Offset);
        }
        else
        {
            json.WriteNull("offset");
        }

        json.WriteEndObject();
    }

    private static void WriteHeader(Utf8JsonWriter json, StreamAnalysis analysis)
    {
        json.WriteStartObject("header");
        if (analysis.Magic is { } magic)
        {
            json.WriteString("magic", $"0x{magic:x8}");
        }

        if (analysis.Version is { } version)
        {
            json.WriteNumber("version", version);
        }

        json.WriteEndObject();
    }

    private static void WriteConfiguration(Utf8JsonWriter json, StreamAnalysis analysis)
    {
        if (analysis.ConfigurationOffset < 0)
        {
            return;
        }

        json.WriteStartObject("configuration");
        json.WriteNumber("offset", analysis.ConfigurationOffset);
        if (analysis.Configuration is { } configuration)
        {
            json.WriteNumber("size", analysis.ConfigurationSize);
            json.WriteString("machine", configuration.MachineName);
            json.WriteStartArray("capabilities");
            foreach (string capability in configuration.Capabilities)
            {
                json.WriteStringValue(capability);
            }

            json.WriteEndArray();
            if (configuration.TargetPageBits is { } bits)
            {
                json.WriteNumber("target_page_bits", bits);
            }
        }
        else
        {
            json.WriteBoolean("complete", false);
        }

        json.WriteEndObject();
    }

    private static void WriteSection(Utf8JsonWriter json, AnalyzedSection section)
    {
        json.WriteStartObject();
        json.WriteString("type", SectionTypeNames.Of(section.Type));
        json.WriteNumber("offset", section.Offset);
        if (section.Complete)
        {
            json.WriteNumber("size", section.Size);
        }
        else
        {
            json.WriteBoolean("complete", false);
        }

        if (section.SectionId is { } id)
        {
            json.WriteNumber("section_id", id);
        }

        if (section.IdStr is { } idstr)
        {
            json.WriteString("idstr", idstr);
        }

        if (section.InstanceId is { } instance)
        {
            json.WriteNumber("instance_id", instance);
        }

        if (section.VersionId is { } version)
        {
            json.WriteNumber("version_id", version);
        }

        if (section.Command is { } command)
        {
            json.WriteString("command", MigrationCommandLayout.Of(command).Name);
        }

        if (section.CommandLength is { } length)
        {
            json.WriteNumber("length", length);
        }

        if (section.PackageLength is { } package)
        {
            json.WriteNumber("package_length", package);
        }

        if (section.Ram is { } ram)
        {
            WriteRam(json, ram);
        }

        if (section.State is { } state)
        {
            json.WritePropertyName("state");
            state.WriteTo(json);
        }

        if (section.Decoded is { } decoded)
        {
            json.WritePropertyName("decoded");
            decoded.WriteTo(json);
        }

        if (section.Skipped is { } skipped)
        {
            json.WriteNumber("skipped_bytes", skipped);
        }

        json.WriteEndObject();
    }

    private static void WriteRam(Utf8JsonWriter json, RamSectionSummary ram)
    {
        json.WriteStartObject("ram");
        if (ram.TotalRamBytes is { } total)
        {
            json.WriteNumber("total_bytes", total);
            json.WriteStartArray("blocks");
            foreach (RamBlockEntry block in ram.Blocks)
            {
                json.WriteStartObject();
                json.WriteString("idstr", block.IdStr);
                json.WriteNumber("length", block.Length);
                if (block.GuestAddress is { } address)
                {
                    json.WriteNumber("guest_address", address);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        json.WritePropertyName("records");
        WriteRecords(json, ram.Records);
        json.WriteEndObject();
    }

    private static void WriteRecords(Utf8JsonWriter json, RamRecordCounts records)
    {
        json.WriteStartObject();
        json.WriteNumber("page", records.Pages);
        json.WriteNumber("zero", records.ZeroPages);
        json.WriteNumber("xbzrle", records.XbzrlePages);
        json.WriteNumber("compress_page", records.CompressedPages);
        json.WriteNumber("mem_size", records.MemSizeRecords);
        json.WriteNumber("eos", records.EosRecords);
        json.WriteNumber("multifd_flush", records.MultifdFlushRecords);
        json.WriteNumber("named_block", records.RecordsNamingBlock);
        json.WriteEndObject();
    }
}
