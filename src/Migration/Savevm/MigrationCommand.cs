namespace MiniVmm.Migration.Savevm;

/// <summary>The commands a COMMAND element (type 0x08) can carry (QEMU's <c>MIG_CMD_*</c>).</summary>
public enum MigrationCommand : ushort
{
    /// <summary>Never valid.</summary>
    Invalid = 0,
    /// <summary>The destination should open the return path.</summary>
    OpenReturnPath = 1,
    /// <summary>Asks for a PONG on the return path.</summary>
    Ping = 2,
    /// <summary>Postcopy may follow.</summary>
    PostcopyAdvise = 3,
    /// <summary>Postcopy: start listening for pages.</summary>
    PostcopyListen = 4,
    /// <summary>Postcopy: start the guest.</summary>
    PostcopyRun = 5,
    /// <summary>Postcopy: discard page ranges.</summary>
    PostcopyRamDiscard = 6,
    /// <summary>A length-prefixed sub-stream follows.</summary>
    Packaged = 7,
    /// <summary>COLO mode.</summary>
    EnableColo = 8,
    /// <summary>Postcopy recovery.</summary>
    PostcopyResume = 9,
    /// <summary>Postcopy recovery: send a received bitmap.</summary>
    RecvBitmap = 10,
    /// <summary>QEMU ≥ 10.0 only; a 7.2 destination rejects it.</summary>
    SwitchoverStart = 11,
}
