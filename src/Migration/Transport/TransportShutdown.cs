using MiniVmm.Migration.Transport.Tls;

namespace MiniVmm.Migration.Transport;

/// <summary>
/// Wakes a thread blocked reading or writing a migration transport: a socket is shut down both
/// ways (its descriptor stays valid until disposed), anything else is disposed.
/// </summary>
public static class TransportShutdown
{
    /// <summary>Shuts <paramref name="transport"/> down; errors of an already closed transport are ignored.</summary>
    public static void Shutdown(System.IO.Stream? transport)
    {
        try
        {
            switch (transport)
            {
                case null:
                    break;
                case TlsTransportStream tls:
                    Shutdown(tls.Inner);
                    break;
                case System.Net.Sockets.NetworkStream network:
                    network.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Both);
                    break;
                case MiniVmm.Native.FileDescriptorStream passed when passed.Handle.TryShutdownSocket():
                    // A socket passed with getfd: shutdown wakes a write blocked on it.
                    break;
                default:
                    transport.Dispose();
                    break;
            }
        }
        catch (Exception error) when (error is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            // Already closed: the thread sees the failure on its next read or write.
        }
    }
}
