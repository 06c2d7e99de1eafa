using Microsoft.Extensions.Logging;

namespace MiniVmm.Migration.Stall;

/// <summary>
/// The stall detection's log events (ids 7200–7299), written with the logger of the side that
/// detects: category <c>MigrationSession</c> on the source, <c>IncomingMigration</c> on the destination.
/// </summary>
internal static partial class StallDetectionLog
{
    [LoggerMessage(EventId = 7201, Level = LogLevel.Debug, Message = "outgoing migration: stall detection x-stall-timeout={Milliseconds} ms")]
    public static partial void StallTimeout(ILogger logger, long milliseconds);

    [LoggerMessage(EventId = 7202, Level = LogLevel.Warning, Message = "outgoing migration stalled ({Kind} side) at stream offset {Offset}: {Reason}")]
    public static partial void OutgoingStalled(ILogger logger, string kind, long offset, string reason);

    [LoggerMessage(EventId = 7203, Level = LogLevel.Warning, Message = "incoming migration stalled ({Kind} side) at stream offset {Offset}: {Reason}")]
    public static partial void IncomingStalled(ILogger logger, string kind, long offset, string reason);
}
