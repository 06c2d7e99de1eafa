namespace MiniVmm.Devices.Models;

/// <summary>
/// What a device is told about itself when it is built: its <c>id</c> (null without one), its
/// model name, its index among the devices of its model (in command-line order) and the option
/// as typed, for messages.
/// </summary>
/// <param name="Id">The qdev id, or null.</param>
/// <param name="Model">The model name, e.g. <c>x-sample</c>.</param>
/// <param name="Index">0 for the first device of this model, 1 for the next...</param>
/// <param name="Text">The <c>-device</c> option as typed.</param>
public sealed record DeviceContext(string? Id, string Model, int Index, string Text)
{
    /// <summary>An error about this device as the command line reports it: <c>-device TEXT: MESSAGE</c>.</summary>
    public DeviceConfigurationException Error(string message) => new($"-device {Text}: {message}");
}
