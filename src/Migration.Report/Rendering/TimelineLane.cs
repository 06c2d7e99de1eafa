using System.Text.Json;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>One row of the state timeline: what one thing (the migration, the VM, a device, the harness) was in, from when to when.</summary>
/// <param name="Series">Its id (<c>data-series</c>): <c>status</c>, <c>run-state</c>, <c>phase</c>, <c>vfio:ID</c>, <c>harness</c>.</param>
/// <param name="Label">Its name on the left.</param>
/// <param name="Changes">When it changed to what, in time order.</param>
internal sealed record TimelineLane(string Series, string Label, IReadOnlyList<(long TimeMs, string State, string? Detail)> Changes)
{
    /// <summary>
    /// The lanes of <paramref name="events"/>: migration status, source run state and phase
    /// always; one per VFIO device that reported a state (VFIO_MIGRATION); the guest harness when
    /// it noted a PAUSE or RUN, or went away.
    /// </summary>
    public static IReadOnlyList<TimelineLane> Of(IReadOnlyList<ReportEvent> events)
    {
        var lanes = new List<TimelineLane>
        {
            new("status", "migration", ChangesOf(events, e => e.Kind == MigrationTimelineEventKind.Status ? e.Name : null)),
            new("run-state", "source VM", ChangesOf(events, e => e.Kind == MigrationTimelineEventKind.RunState ? e.Name : null)),
            new("phase", "phase", ChangesOf(events, e => e.Kind == MigrationTimelineEventKind.Phase ? e.Name : null)),
        };
        var devices = new SortedDictionary<string, List<(long, string, string?)>>(StringComparer.Ordinal);
        foreach (ReportEvent e in events)
        {
            if (e.Kind == MigrationTimelineEventKind.VmEvent && e.Name == "VFIO_MIGRATION" && VfioState(e.Detail) is ({ } id, { } state))
            {
                if (!devices.TryGetValue(id, out List<(long, string, string?)>? changes))
                {
                    devices[id] = changes = [];
                }

                changes.Add((e.TimeMs, state, null));
            }
        }

        foreach ((string id, List<(long, string, string?)> changes) in devices)
        {
            lanes.Add(new TimelineLane($"vfio:{id}", $"VFIO {id}", changes));
        }

        List<(long, string, string?)> harness = ChangesOf(events, e => e switch
        {
            { Kind: MigrationTimelineEventKind.Activity, Name: "harness PAUSE" } => "PAUSE",
            { Kind: MigrationTimelineEventKind.Activity, Name: "harness RUN" } => "RUN",
            { Kind: MigrationTimelineEventKind.VmEvent, Name: "GUEST_HARNESS_DISCONNECTED" } => "gone",
            _ => null,
        });
        if (harness.Count > 0)
        {
            lanes.Add(new TimelineLane("harness", "harness", harness));
        }

        return lanes;
    }

    private static List<(long, string, string?)> ChangesOf(IReadOnlyList<ReportEvent> events, Func<ReportEvent, string?> state)
    {
        var changes = new List<(long, string, string?)>();
        foreach (ReportEvent e in events)
        {
            if (state(e) is { } name)
            {
                changes.Add((e.TimeMs, name, e.Kind == MigrationTimelineEventKind.Activity ? e.Detail : null));
            }
        }

        return changes;
    }

    private static (string? Id, string? State) VfioState(string? detail)
    {
        if (detail is null)
        {
            return (null, null);
        }

        try
        {
            using var json = JsonDocument.Parse(detail);
            JsonElement root = json.RootElement;
            return root.ValueKind == JsonValueKind.Object
                   && root.TryGetProperty("device-id", out JsonElement id) && id.ValueKind == JsonValueKind.String
                   && root.TryGetProperty("device-state", out JsonElement state) && state.ValueKind == JsonValueKind.String
                ? (id.GetString(), state.GetString())
                : (null, null);
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }
}
