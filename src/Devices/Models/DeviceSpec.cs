namespace MiniVmm.Devices.Models;

/// <summary>One <c>-device DRIVER,key=value,...</c> option, before it is checked against the <see cref="DeviceModelCatalog"/>.</summary>
/// <param name="Driver">The device model, e.g. <c>loader</c>.</param>
/// <param name="Properties">Its properties, without <c>driver</c>.</param>
/// <param name="Text">The option as typed, for messages.</param>
public sealed record DeviceSpec(string Driver, IReadOnlyDictionary<string, string> Properties, string Text);
