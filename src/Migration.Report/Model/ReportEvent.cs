using MiniVmm.Migration.Control;

namespace MiniVmm.Migration.Report.Model;

/// <summary>Something that happened at one moment (a timeline event).</summary>
/// <param name="TimeMs">Milliseconds since the start.</param>
/// <param name="Kind">What sort of event.</param>
/// <param name="Name">The status, run state, phase, throttle, VM event or activity name.</param>
/// <param name="Detail">The VM event's JSON data, an error, an activity's detail; or null.</param>
public sealed record ReportEvent(long TimeMs, MigrationTimelineEventKind Kind, string Name, string? Detail);
