namespace MiniVmm.Devices.Models;

/// <summary>
/// Marks a constructor parameter of a device model as a <c>-device</c> property (QEMU's qdev
/// property): its name on the command line and a one-line description for
/// <c>-device NAME,help</c>. The parameter's type says what values it takes (string, bool as
/// on/off, integers in decimal or 0x hex); a C# default value makes it optional. Other
/// constructor parameters come from the service container, or are the device's
/// <see cref="DeviceContext"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class DevicePropertyAttribute(string name) : Attribute
{
    /// <summary>The property's name, e.g. <c>seed</c>.</summary>
    public string Name { get; } = name;

    /// <summary>What the property does, for <c>-device NAME,help</c>.</summary>
    public string Description { get; init; } = "";
}
