using System.Text.Json.Nodes;

namespace MiniVmm.Devices.Models;

/// <summary>
/// A device that shows more than its VMState fields in <c>x-query-device</c> (a live device's
/// own view: VFIO states, digests, counters). Runs on the QMP thread with the big lock held.
/// </summary>
public interface IDeviceIntrospection
{
    /// <summary>What the device shows under <c>info</c>.</summary>
    JsonObject Describe();
}
