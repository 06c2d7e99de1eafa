namespace MiniVmm.Migration.ReturnPath;

/// <summary>
/// The messages a destination sends back to the source on the return path (QEMU's
/// <c>MIG_RP_MSG_*</c>). Each travels as <c>be16 type, be16 length, payload</c>.
/// </summary>
public enum ReturnPathMessageType : ushort
{
    /// <summary>Never valid.</summary>
    Invalid = 0,

    /// <summary>The destination is done with the incoming migration: be32 0 (success) or 1 (failure).</summary>
    Shut = 1,

    /// <summary>The answer to a PING command: the be32 value the PING carried.</summary>
    Pong = 2,

    /// <summary>Postcopy: page request by ramblock id.</summary>
    RequestPagesById = 3,

    /// <summary>Postcopy: page request.</summary>
    RequestPages = 4,

    /// <summary>Postcopy recovery: the received-pages bitmap.</summary>
    ReceivedBitmap = 5,

    /// <summary>Postcopy recovery: the destination is ready to resume.</summary>
    ResumeAck = 6,

    /// <summary>Every device that needed to approve the switchover has (QEMU ≥ 8.1); no payload.</summary>
    SwitchoverAck = 7,
}
