namespace MiniVmm.Migration.Transport;

/// <summary>What a migration connection carries; it decides the socket buffers (<see cref="OutgoingTransport.SocketBufferBytes"/>).</summary>
public enum MigrationConnectionRole
{
    /// <summary>The main stream: sections, device state, and RAM without multifd.</summary>
    Main,

    /// <summary>A multifd channel: page packets only.</summary>
    MultifdChannel,
}
