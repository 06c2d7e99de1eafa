namespace MiniVmm.Devices.Models;

/// <summary>A checked <c>-device</c> option: the model, the device's context and its property values.</summary>
/// <param name="Model">The device model.</param>
/// <param name="Context">The id, index and option text.</param>
/// <param name="Values">The converted property values, by property name (absent = default).</param>
public sealed record DeviceConfiguration(DeviceModel Model, DeviceContext Context, IReadOnlyDictionary<string, object?> Values);
