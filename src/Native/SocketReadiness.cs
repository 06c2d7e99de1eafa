using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>Waits with poll(2) until a nonblocking socket can be read or written, retrying after signals.</summary>
internal static class SocketReadiness
{
    /// <summary>Blocks until <paramref name="fd"/> reports one of <paramref name="events"/> (or an error, which the next call reports).</summary>
    /// <exception cref="NativeCallException">poll failed.</exception>
    public static unsafe void Wait(int fd, short events)
    {
        var descriptor = new PollDescriptor { Descriptor = fd, Events = events };
        while (LibC.poll(&descriptor, 1, -1) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
            {
                throw new NativeCallException("poll", errno, $"fd {fd}, events 0x{events:x}");
            }
        }
    }
}
