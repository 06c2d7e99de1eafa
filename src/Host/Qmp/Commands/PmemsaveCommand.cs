using System.Text.Json.Nodes;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>pmemsave {val, size, filename}</c>: writes guest physical memory to a file.</summary>
public sealed class PmemsaveCommand(GuestMemory? memory = null) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "pmemsave";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } =
    [
        new("val", QmpParameterType.Integer),
        new("size", QmpParameterType.Integer),
        new("filename", QmpParameterType.String),
        new("cpu-index", QmpParameterType.Integer, Optional: true),
    ];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        long address = arguments["val"]!.GetValue<long>();
        long size = arguments["size"]!.GetValue<long>();
        string file = arguments["filename"]!.GetValue<string>();
        if (memory is null)
        {
            throw new QmpException("the machine has no RAM (start it with -m SIZE)");
        }

        try
        {
            memory.SaveToFile(address, size, file);
        }
        catch (Exception error) when (error is GuestMemoryRangeException or IOException or UnauthorizedAccessException)
        {
            throw new QmpException(error is IOException or UnauthorizedAccessException
                ? $"Could not open '{file}': {error.Message}"
                : error.Message);
        }

        return null;
    }
}
