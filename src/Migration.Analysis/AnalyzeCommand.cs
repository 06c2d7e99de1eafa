using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// The engine of <c>minivmm analyze FILE [--dump state|desc]</c>: analyzes a migration stream,
/// writes indented JSON to a <see cref="TextWriter"/> and returns an exit code
/// (<see cref="AnalysisExitCode"/>). Bad streams never throw: the JSON then holds what was
/// parsed plus an "error" member, and the exit code is non-zero.
/// </summary>
public static class AnalyzeCommand
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Analyzes the file at <paramref name="path"/>; <paramref name="decoders"/> read the sections of plugged-in devices.</summary>
    public static int Run(string path, AnalysisDumpMode mode, TextWriter output, IReadOnlyList<IStreamSectionDecoder>? decoders = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(output);
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            WriteJson(output, json => StreamAnalysisJson.WriteFailure(
                json, new MigrationStreamException($"cannot open '{path}': {ex.Message}", ex)));
            return AnalysisExitCode.CannotRead;
        }

        using (file)
        {
            return Run(file, mode, output, decoders);
        }
    }

    /// <summary>
    /// Analyzes <paramref name="input"/> from its current position treated as offset 0 when it
    /// cannot seek (it is copied to a temporary file first), or from offset 0 when it can.
    /// </summary>
    public static int Run(System.IO.Stream input, AnalysisDumpMode mode, TextWriter output, IReadOnlyList<IStreamSectionDecoder>? decoders = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        if (input.CanSeek)
        {
            return RunSeekable(input, mode, output, decoders);
        }

        FileStream spool;
        try
        {
            spool = new FileStream(
                Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None, 64 * 1024, FileOptions.DeleteOnClose);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            WriteJson(output, json => StreamAnalysisJson.WriteFailure(
                json, new MigrationStreamException($"cannot create a temporary file for the stream: {ex.Message}", ex)));
            return AnalysisExitCode.CannotRead;
        }

        using (spool)
        {
            try
            {
                input.CopyTo(spool);
            }
            catch (IOException ex)
            {
                WriteJson(output, json => StreamAnalysisJson.WriteFailure(
                    json, new MigrationStreamException($"reading the stream failed: {ex.Message}", spool.Length, ex)));
                return AnalysisExitCode.CannotRead;
            }

            return RunSeekable(spool, mode, output, decoders);
        }
    }

    private static int RunSeekable(System.IO.Stream input, AnalysisDumpMode mode, TextWriter output, IReadOnlyList<IStreamSectionDecoder>? decoders)
    {
        if (mode == AnalysisDumpMode.Desc)
        {
            VmDescriptionTrailer description;
            try
            {
                description = MigrationStreamAnalyzer.FindDescription(input);
            }
            catch (MigrationStreamException ex)
            {
                WriteJson(output, json => StreamAnalysisJson.WriteFailure(json, ex));
                return AnalysisExitCode.BadStream;
            }

            WriteJson(output, json => StreamAnalysisJson.WriteDescription(json, description));
            return AnalysisExitCode.Success;
        }

        StreamAnalysis analysis = MigrationStreamAnalyzer.Analyze(input, decoders);
        WriteJson(output, json => StreamAnalysisJson.WriteState(json, analysis));
        return analysis.Succeeded ? AnalysisExitCode.Success : AnalysisExitCode.BadStream;
    }

    private static void WriteJson(TextWriter output, Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(json);
        }

        output.WriteLine(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        output.Flush();
    }
}
