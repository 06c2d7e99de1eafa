using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>
/// Sends many buffers as one stretch of a socket's byte stream with sendmsg(2), so that data
/// already in place (guest RAM) goes to the kernel without first being copied into a user
/// buffer. Works on blocking and nonblocking sockets alike; never raises SIGPIPE.
/// </summary>
public static class GatheredSend
{
    /// <summary>
    /// Sends every byte <paramref name="vectors"/> describe, in order, resuming after partial
    /// sends (the span's entries are advanced in place) and waiting for room when the socket is
    /// full. A socket shut down meanwhile makes it fail rather than wait.
    /// </summary>
    /// <exception cref="NativeCallException">The send failed (EPIPE after a shutdown, ECONNRESET...).</exception>
    public static unsafe void SendAll(SafeHandle socket, Span<IoVector> vectors)
    {
        ArgumentNullException.ThrowIfNull(socket);
        bool referenced = false;
        try
        {
            socket.DangerousAddRef(ref referenced);
            int fd = (int)socket.DangerousGetHandle();
            int first = 0;
            while (first < vectors.Length && vectors[first].Length == 0)
            {
                first++;
            }

            fixed (IoVector* start = vectors)
            {
                while (first < vectors.Length)
                {
                    var header = new SocketMessageHeader
                    {
                        Vectors = start + first,
                        VectorCount = (nuint)Math.Min(vectors.Length - first, MaxVectors),
                    };
                    nint sent = LibC.sendmsg(fd, &header, LibC.MSG_NOSIGNAL);
                    if (sent < 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        if (errno == Errno.EAGAIN)
                        {
                            SocketReadiness.Wait(fd, LibC.POLLOUT);
                        }
                        else if (errno != Errno.EINTR)
                        {
                            throw new NativeCallException("sendmsg", errno, $"fd {fd}, {vectors.Length - first} buffers");
                        }

                        continue;
                    }

                    // Skip what went out: whole buffers, then part of the next one.
                    nuint left = (nuint)sent;
                    while (first < vectors.Length && left >= start[first].Length)
                    {
                        left -= start[first].Length;
                        first++;
                    }

                    if (left > 0)
                    {
                        start[first].Base += left;
                        start[first].Length -= left;
                    }
                }
            }
        }
        finally
        {
            if (referenced)
            {
                socket.DangerousRelease();
            }
        }
    }

    /// <summary>The most buffers one sendmsg takes (the kernel's UIO_MAXIOV).</summary>
    public const int MaxVectors = 1024;
}
