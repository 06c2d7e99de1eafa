using System.Text.Json.Nodes;
using MiniVmm.Host.Reports;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Qmp.Commands.Migration;

/// <summary>
/// <c>migrate {uri}</c>: starts an outgoing migration and returns at once; progress comes from
/// <c>query-migrate</c> and the <c>MIGRATION</c> events. 7.2's block-migration flags are
/// accepted; <c>blk</c>/<c>inc</c> true and <c>resume</c> true are refused (no block migration, no postcopy).
/// MiniVmm's own <c>x-report</c> (an HTML file's path) writes a migration report there, and its
/// data as JSON beside it, once the migration has ended however it ended.
/// </summary>
public sealed class MigrateCommand(MigrationCoordinator migration, MigrationReportWriter reports) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "migrate";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } =
    [
        new("uri", QmpParameterType.String),
        new("blk", QmpParameterType.Boolean, Optional: true),
        new("inc", QmpParameterType.Boolean, Optional: true),
        new("detach", QmpParameterType.Boolean, Optional: true),
        new("resume", QmpParameterType.Boolean, Optional: true),
        new("x-report", QmpParameterType.String, Optional: true),
    ];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        if (arguments["resume"]?.GetValue<bool>() == true)
        {
            throw new QmpException("Cannot resume if there is no paused migration");
        }

        if (arguments["blk"]?.GetValue<bool>() == true || arguments["inc"]?.GetValue<bool>() == true)
        {
            throw new QmpException("Block migration is not supported by MiniVmm");
        }

        try
        {
            string? report = arguments["x-report"]?.GetValue<string>() is { } path ? MigrationReportWriter.CheckPath(path) : null;
            string uri = arguments["uri"]!.GetValue<string>();
            MigrationSession session = migration.StartOutgoing(uri);
            if (report is not null)
            {
                reports.WriteWhenFinished(session, migration.Capabilities, uri, report);
            }
        }
        catch (Exception error) when (error is MigrationBlockedException or ArgumentException)
        {
            throw new QmpException(error.Message);
        }

        return null;
    }
}
