using System.Text.Json.Nodes;
using MiniVmm.Host.Devices;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>x-query-vfio {id}</c>: an emulated VFIO device's states, state digest and transfer count.</summary>
public sealed class QueryVfioCommand(IEnumerable<VfioEmuDevice> devices) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "x-query-vfio";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("id", QmpParameterType.String)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        string id = arguments["id"]!.GetValue<string>();
        VfioEmuDevice device = devices.FirstOrDefault(d => d.Id == id)
            ?? throw new QmpException(QmpErrorClass.DeviceNotFound, $"Device '{id}' not found");
        return device.ToJson();
    }
}
