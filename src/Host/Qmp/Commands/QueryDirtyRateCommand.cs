using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>query-dirty-rate</c>: the last measurement.</summary>
public sealed class QueryDirtyRateCommand(DirtyRateMeasurements measurements) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "query-dirty-rate";

    /// <inheritdoc/>
    public bool RequiresBigLock => false;

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context) => measurements.Query();
}
