using System.Text.Json.Nodes;

namespace MiniVmm.Migration.Control;

/// <summary>
/// An immutable snapshot of a migration, shaped like QMP <c>query-migrate</c>'s MigrationInfo.
/// Times are milliseconds. Members QEMU leaves out in a status are null here.
/// </summary>
public sealed record MigrationInfo(
    MigrationStatus Status,
    long? TotalTime = null,
    long? ExpectedDowntime = null,
    long? Downtime = null,
    long? SetupTime = null,
    RamTransferStats? Ram = null,
    double Mbps = 0,
    long PagesPerSecond = 0,
    long? VfioTransferred = null,
    string? ErrorDescription = null,
    int Passes = 0,
    int CpuThrottlePercentage = 0)
{
    /// <summary>No migration yet: <c>query-migrate</c> returns an empty object.</summary>
    public static MigrationInfo NotStarted { get; } = new(MigrationStatus.None);

    /// <summary>The <c>query-migrate</c> reply, with the members QEMU 7.2 includes for this status.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject();
        if (Status == MigrationStatus.None && ErrorDescription is null)
        {
            return json;
        }

        json["status"] = Status.ToQapiName();
        Add("setup-time", SetupTime);
        Add("downtime", Downtime);
        Add("total-time", TotalTime);
        Add("expected-downtime", ExpectedDowntime);
        if (Ram is { } ram)
        {
            bool completed = Status == MigrationStatus.Completed;
            var ramJson = new JsonObject
            {
                ["transferred"] = ram.Transferred,
                ["remaining"] = completed ? 0 : ram.Remaining,
                ["total"] = ram.Total,
                ["duplicate"] = ram.Duplicate,
                ["skipped"] = 0,
                ["normal"] = ram.Normal,
                ["normal-bytes"] = ram.NormalBytes,
                ["dirty-pages-rate"] = completed ? 0 : ram.DirtyPagesRate,
                ["mbps"] = Math.Round(Mbps, 3),
                ["dirty-sync-count"] = ram.DirtySyncCount,
                ["postcopy-requests"] = 0,
                ["page-size"] = ram.PageSize,
                ["multifd-bytes"] = ram.MultifdBytes,
                ["pages-per-second"] = PagesPerSecond,
                ["precopy-bytes"] = ram.PrecopyBytes,
                ["downtime-bytes"] = ram.DowntimeBytes,
                ["postcopy-bytes"] = 0,
                ["dirty-sync-missed-zero-copy"] = 0,
            };
            json["ram"] = ramJson;
        }

        if (CpuThrottlePercentage > 0)
        {
            json["cpu-throttle-percentage"] = CpuThrottlePercentage;
        }

        if (VfioTransferred is { } vfio)
        {
            json["vfio"] = new JsonObject { ["transferred"] = vfio };
        }

        if (ErrorDescription is not null)
        {
            json["error-desc"] = ErrorDescription;
        }

        return json;

        void Add(string name, long? value)
        {
            if (value is { } v)
            {
                json[name] = v;
            }
        }
    }
}
