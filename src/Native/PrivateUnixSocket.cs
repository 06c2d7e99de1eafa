using System.Net.Sockets;

namespace MiniVmm.Native;

/// <summary>
/// A listening UNIX stream socket that only its owner may connect to (mode 0600). It is bound
/// under a temporary name, restricted, listened on and only then renamed into place, so a
/// client that sees the path can always connect, and never to a socket that was ever open to
/// others. A stale socket file at the path is replaced.
/// </summary>
public static class PrivateUnixSocket
{
    /// <summary>Binds and listens at <paramref name="path"/>; the caller owns the socket and removes the file.</summary>
    /// <exception cref="SocketException">Binding or listening failed.</exception>
    /// <exception cref="IOException">The socket file could not be put in place.</exception>
    public static Socket Listen(string path, int backlog)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            string staging = path + ".new";
            RemoveStale(staging);
            socket.Bind(new UnixDomainSocketEndPoint(staging));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(staging, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            socket.Listen(backlog);
            File.Move(staging, path, overwrite: true);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void RemoveStale(string path)
    {
        if (File.Exists(path) && (File.GetAttributes(path) & FileAttributes.Directory) == 0)
        {
            File.Delete(path);
        }
    }
}
