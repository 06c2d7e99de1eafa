using MiniVmm.Migration.Savevm;

namespace MiniVmm.Migration.Analysis;

/// <summary>The names the analyzer prints for migration commands (QEMU's <c>MIG_CMD_*</c> without the prefix).</summary>
public static class CommandNames
{
    /// <summary>The printed name of <paramref name="command"/>; unknown numbers as hex.</summary>
    public static string Of(MigrationCommand command) => command switch
    {
        MigrationCommand.Invalid => "INVALID",
        MigrationCommand.OpenReturnPath => "OPEN_RETURN_PATH",
        MigrationCommand.Ping => "PING",
        MigrationCommand.PostcopyAdvise => "POSTCOPY_ADVISE",
        MigrationCommand.PostcopyListen => "POSTCOPY_LISTEN",
        MigrationCommand.PostcopyRun => "POSTCOPY_RUN",
        MigrationCommand.PostcopyRamDiscard => "POSTCOPY_RAM_DISCARD",
        MigrationCommand.Packaged => "PACKAGED",
        MigrationCommand.EnableColo => "ENABLE_COLO",
        MigrationCommand.PostcopyResume => "POSTCOPY_RESUME",
        MigrationCommand.RecvBitmap => "RECV_BITMAP",
        MigrationCommand.SwitchoverStart => "SWITCHOVER_START",
        _ => $"0x{(ushort)command:x}",
    };
}
