namespace MiniVmm.Devices.Models;

/// <summary>
/// A <c>-device</c> option is wrong: an unknown model or property, a bad value, a duplicate id,
/// or a device that refuses its configuration. The message is one line that starts with the
/// option as typed (<c>-device TEXT: ...</c>), ready for the command line.
/// </summary>
public sealed class DeviceConfigurationException(string message) : Exception(message);
