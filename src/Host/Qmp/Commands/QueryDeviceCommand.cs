using System.Text.Json.Nodes;
using MiniVmm.Devices.Models;
using MiniVmm.Migration.Analysis;
using MiniVmm.Migration.Savevm;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary>
/// <c>x-query-device {id}</c>: any device by id: its model, its sections, every VMState
/// section's fields decoded through the device's own description (exactly what a migration
/// would send), and, for a device with a view of its own (<see cref="IDeviceIntrospection"/>),
/// that view under <c>info</c>.
/// </summary>
public sealed class QueryDeviceCommand(DeviceSet devices, SaveStateRegistry registry) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "x-query-device";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("id", QmpParameterType.String)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        string id = arguments["id"]!.GetValue<string>();
        (DeviceContext device, object instance) = devices.Find(id)
            ?? throw new QmpException(QmpErrorClass.DeviceNotFound, $"Device '{id}' not found");
        var sections = new JsonArray();
        var vmstate = new JsonArray();
        foreach (SaveStateEntry entry in registry.Entries.Where(e => BelongsTo(e, id, instance)))
        {
            sections.Add(new JsonObject { ["idstr"] = entry.IdStr, ["instance-id"] = entry.InstanceId, ["version"] = entry.VersionId });
            if (entry.Vmsd is { } vmsd)
            {
                vmstate.Add(VMStateIntrospection.Describe(vmsd, entry.Owner));
            }
        }

        var result = new JsonObject
        {
            ["id"] = id,
            ["model"] = device.Model,
            ["sections"] = sections,
            ["vmstate"] = vmstate,
        };
        if (instance is IDeviceIntrospection own)
        {
            result["info"] = own.Describe();
        }

        return result;
    }

    private static bool BelongsTo(SaveStateEntry entry, string id, object instance) =>
        ReferenceEquals(entry.Owner, instance) || entry.IdStr.StartsWith(id + "/", StringComparison.Ordinal);
}
