namespace MiniVmm.Migration.Savevm;

/// <summary>
/// What each migration command is called and how long its payload is: the one table the loader
/// (which checks lengths and names commands in QEMU's <c>CMD_</c> words) and the analyzer
/// (which prints them) share.
/// </summary>
/// <param name="Name">QEMU's name without the <c>MIG_CMD_</c> prefix, e.g. <c>OPEN_RETURN_PATH</c>; unknown numbers in hex.</param>
/// <param name="FixedLength">The payload length the command always has, or -1 when it varies.</param>
public readonly record struct MigrationCommandLayout(string Name, int FixedLength)
{
    /// <summary>The layout of <paramref name="command"/>.</summary>
    public static MigrationCommandLayout Of(MigrationCommand command) => command switch
    {
        MigrationCommand.Invalid => new("INVALID", -1),
        MigrationCommand.OpenReturnPath => new("OPEN_RETURN_PATH", 0),
        MigrationCommand.Ping => new("PING", sizeof(uint)),
        MigrationCommand.PostcopyAdvise => new("POSTCOPY_ADVISE", -1),
        MigrationCommand.PostcopyListen => new("POSTCOPY_LISTEN", 0),
        MigrationCommand.PostcopyRun => new("POSTCOPY_RUN", 0),
        MigrationCommand.PostcopyRamDiscard => new("POSTCOPY_RAM_DISCARD", -1),
        MigrationCommand.Packaged => new("PACKAGED", sizeof(uint)),
        MigrationCommand.EnableColo => new("ENABLE_COLO", 0),
        MigrationCommand.PostcopyResume => new("POSTCOPY_RESUME", 0),
        MigrationCommand.RecvBitmap => new("RECV_BITMAP", -1),
        MigrationCommand.SwitchoverStart => new("SWITCHOVER_START", 0),
        _ => new($"0x{(ushort)command:x}", -1),
    };

    /// <summary>QEMU's <c>CMD_</c> name, as its loader's messages spell it.</summary>
    public string LoaderName => "CMD_" + Name;
}
