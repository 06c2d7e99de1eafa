using System.Text.Json.Nodes;

namespace MiniVmm.Runstate;

/// <summary>
/// An asynchronous event of the VM, as QMP sends it: <c>STOP</c>, <c>RESUME</c>,
/// <c>SHUTDOWN</c>, <c>MIGRATION</c>, ... with optional data and the time it happened.
/// </summary>
public sealed record VmEvent(string Name, JsonObject? Data, DateTimeOffset Timestamp);
