namespace MiniVmm.Devices.Models;

/// <summary>The kinds of value a device property takes, as <c>-device NAME,help</c> names them.</summary>
public enum DevicePropertyKind
{
    /// <summary>Any text.</summary>
    String,
    /// <summary><c>on</c>/<c>off</c> (also yes/no, true/false).</summary>
    Bool,
    /// <summary>An unsigned integer (decimal or 0x hex), bounded by the parameter's type.</summary>
    Unsigned,
    /// <summary>A signed integer (decimal or 0x hex), bounded by the parameter's type.</summary>
    Signed,
}
