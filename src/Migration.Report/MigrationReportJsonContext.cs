using System.Text.Json.Serialization;
using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Migration.Report;

/// <summary>The report's JSON (source-generated): camelCase members, enums by name, indented.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UseStringEnumConverter = true,
    WriteIndented = true,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(MigrationReport))]
public sealed partial class MigrationReportJsonContext : JsonSerializerContext;
