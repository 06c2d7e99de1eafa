namespace MiniVmm.Native;

/// <summary>
/// Two connected UNIX stream sockets from socketpair(2), both close-on-exec; disposing closes both.
/// </summary>
/// <param name="First">One end.</param>
/// <param name="Second">The other end.</param>
public sealed record UnixSocketPair(FileDescriptorHandle First, FileDescriptorHandle Second) : IDisposable
{
    /// <summary>Creates a connected pair of AF_UNIX SOCK_STREAM sockets.</summary>
    public static unsafe UnixSocketPair Create()
    {
        int* fds = stackalloc int[2];
        if (LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, fds) < 0)
        {
            throw NativeCallException.FromLastError("socketpair", "AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC");
        }

        return new UnixSocketPair(FileDescriptorHandle.FromOwned(fds[0]), FileDescriptorHandle.FromOwned(fds[1]));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        First.Dispose();
        Second.Dispose();
    }
}
