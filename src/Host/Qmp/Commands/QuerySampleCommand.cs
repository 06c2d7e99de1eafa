using System.Text.Json.Nodes;
using MiniVmm.Host.Devices;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>x-query-sample {id}</c>: the state of an <c>x-sample</c> device, to compare two VMs.</summary>
public sealed class QuerySampleCommand(IEnumerable<SampleDevice> devices) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "x-query-sample";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("id", QmpParameterType.String)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        string id = arguments["id"]!.GetValue<string>();
        SampleDevice device = devices.FirstOrDefault(d => d.Id == id)
            ?? throw new QmpException(QmpErrorClass.DeviceNotFound, $"Device '{id}' not found");
        return device.ToJson();
    }
}
