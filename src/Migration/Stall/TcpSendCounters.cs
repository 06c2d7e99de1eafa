using System.Runtime.InteropServices;
using System.Net.Sockets;

namespace MiniVmm.Migration.Stall;

/// <summary>
/// What the kernel knows about a TCP connection's sending side (Linux <c>TCP_INFO</c>): the bytes
/// the peer's kernel acked, and whether data is still in flight or queued. A peer process that
/// stops reading stops the acks once its receive buffer is full, even while our send buffer
/// still takes writes.
/// </summary>
/// <param name="BytesAcked">Bytes of this connection the peer has acked.</param>
/// <param name="UnackedSegments">Segments sent and not yet acked.</param>
/// <param name="NotSentBytes">Bytes written to the socket and not yet sent.</param>
public readonly record struct TcpSendCounters(long BytesAcked, int UnackedSegments, int NotSentBytes)
{
    private const int SolTcp = 6;
    private const int TcpInfo = 11;

    // Offsets in struct tcp_info (linux/tcp.h, stable since Linux 4.x): tcpi_unacked,
    // tcpi_bytes_acked and tcpi_notsent_bytes, in host byte order.
    private const int UnackedOffset = 24;
    private const int BytesAckedOffset = 120;
    private const int NotSentOffset = 144;
    private const int NeededLength = NotSentOffset + 4;

    /// <summary>Whether bytes wait in our send queue or on the wire for the peer's ack.</summary>
    public bool InFlight => UnackedSegments > 0 || NotSentBytes > 0;

    /// <summary>Reads the counters of <paramref name="socket"/>; null when it is no TCP socket, is closed, or the kernel is too old.</summary>
    public static TcpSendCounters? Read(Socket? socket)
    {
        if (socket is null || socket.ProtocolType != ProtocolType.Tcp)
        {
            return null;
        }

        Span<byte> info = stackalloc byte[256];
        try
        {
            int length = socket.GetRawSocketOption(SolTcp, TcpInfo, info);
            if (length < NeededLength)
            {
                return null;
            }
        }
        catch (Exception error) when (error is SocketException or ObjectDisposedException)
        {
            return null;
        }

        return new TcpSendCounters(
            (long)MemoryMarshal.Read<ulong>(info[BytesAckedOffset..]),
            (int)MemoryMarshal.Read<uint>(info[UnackedOffset..]),
            (int)MemoryMarshal.Read<uint>(info[NotSentOffset..]));
    }

    /// <summary>The TCP socket under a migration transport (plain or under TLS), or null.</summary>
    public static Socket? SocketOf(System.IO.Stream? transport) => transport switch
    {
        NetworkStream network => network.Socket,
        MiniVmm.Migration.Transport.Tls.TlsTransportStream tls => SocketOf(tls.Inner),
        _ => null,
    };
}
