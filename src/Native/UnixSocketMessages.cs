using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>
/// Data together with file descriptors over a UNIX socket: sendmsg(2) and recvmsg(2) with an
/// SCM_RIGHTS ancillary message. Received descriptors are close-on-exec and owned by the caller.
/// </summary>
public static class UnixSocketMessages
{
    /// <summary>How many descriptors one receive has room for; more in one message is an error.</summary>
    public const int MaxReceivedDescriptors = 16;

    /// <summary>The most descriptors one message may carry (the kernel's SCM_MAX_FD).</summary>
    public const int MaxSentDescriptors = 253;

    /// <summary>
    /// Receives up to <c>buffer.Length</c> bytes; returns the count, 0 at end of stream. The
    /// descriptors that came with the bytes are appended to <paramref name="descriptors"/>.
    /// Retries on EINTR. When nothing can be read without blocking (a nonblocking socket, or
    /// <paramref name="dontWait"/>), throws <see cref="NativeCallException"/> with
    /// <see cref="Errno.EAGAIN"/>; use <see cref="TryReceive"/> to get false instead.
    /// </summary>
    /// <param name="socket">A UNIX socket (any socket works; only UNIX sockets carry descriptors).</param>
    /// <param name="buffer">Where the bytes go.</param>
    /// <param name="descriptors">Receives the passed descriptors, in the order sent.</param>
    /// <param name="dontWait">Whether to use MSG_DONTWAIT whatever the socket's mode.</param>
    /// <exception cref="IOException">The descriptors did not fit (MSG_CTRUNC); those that did are closed.</exception>
    public static int Receive(SafeHandle socket, Span<byte> buffer, List<FileDescriptorHandle> descriptors, bool dontWait = false)
    {
        if (TryReceive(socket, buffer, descriptors, out int count, dontWait))
        {
            return count;
        }

        throw new NativeCallException("recvmsg", Errno.EAGAIN, Describe(socket, buffer.Length));
    }

    /// <summary>
    /// Receives like <see cref="Receive"/>, but returns false instead of throwing when nothing
    /// can be read without blocking (EAGAIN), so that an asynchronous caller can wait again.
    /// </summary>
    /// <exception cref="IOException">The descriptors did not fit (MSG_CTRUNC); those that did are closed.</exception>
    public static unsafe bool TryReceive(
        SafeHandle socket, Span<byte> buffer, List<FileDescriptorHandle> descriptors, out int count, bool dontWait = false)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(descriptors);
        int controlSpace = ControlMessageHeader.SpaceFor(MaxReceivedDescriptors * sizeof(int));
        ulong* control = stackalloc ulong[controlSpace / sizeof(ulong)];
        int flags = LibC.MSG_CMSG_CLOEXEC | (dontWait ? LibC.MSG_DONTWAIT : 0);

        bool referenced = false;
        try
        {
            socket.DangerousAddRef(ref referenced);
            int fd = (int)socket.DangerousGetHandle();
            fixed (byte* data = buffer)
            {
                var vector = new IoVector { Base = data, Length = (nuint)buffer.Length };
                SocketMessageHeader header;
                nint result;
                while (true)
                {
                    header = new SocketMessageHeader
                    {
                        Vectors = &vector,
                        VectorCount = 1,
                        Control = (byte*)control,
                        ControlLength = (nuint)controlSpace,
                    };
                    result = LibC.recvmsg(fd, &header, flags);
                    if (result >= 0)
                    {
                        break;
                    }

                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EAGAIN)
                    {
                        count = 0;
                        return false;
                    }

                    if (errno != Errno.EINTR)
                    {
                        throw new NativeCallException("recvmsg", errno, Describe(socket, buffer.Length));
                    }
                }

                int first = descriptors.Count;
                CollectDescriptors((byte*)control, (int)header.ControlLength, descriptors);
                if ((header.Flags & LibC.MSG_CTRUNC) != 0)
                {
                    for (int i = first; i < descriptors.Count; i++)
                    {
                        descriptors[i].Dispose();
                    }

                    descriptors.RemoveRange(first, descriptors.Count - first);
                    throw new IOException(
                        $"recvmsg({Describe(socket, buffer.Length)}): control message truncated (MSG_CTRUNC): "
                        + $"the peer passed more than {MaxReceivedDescriptors} file descriptors at once; they were closed");
                }

                count = (int)result;
                return true;
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

    /// <summary>
    /// Sends <paramref name="data"/> with <paramref name="descriptors"/> attached (SCM_RIGHTS) in
    /// one sendmsg(2); returns how many bytes went out (the descriptors go with the first byte).
    /// Never raises SIGPIPE (MSG_NOSIGNAL). Retries on EINTR; a nonblocking socket that is full
    /// throws <see cref="NativeCallException"/> with <see cref="Errno.EAGAIN"/>.
    /// </summary>
    /// <param name="socket">A connected UNIX socket.</param>
    /// <param name="data">The bytes; at least one when descriptors are passed (stream sockets drop them otherwise).</param>
    /// <param name="descriptors">Descriptor numbers to pass; the receiver gets its own copies.</param>
    public static unsafe int Send(SafeHandle socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> descriptors)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (descriptors.Length > MaxSentDescriptors)
        {
            throw new ArgumentOutOfRangeException(nameof(descriptors), descriptors.Length, $"at most {MaxSentDescriptors} descriptors fit in one message");
        }

        if (!descriptors.IsEmpty && data.IsEmpty)
        {
            throw new ArgumentException("Descriptors need at least one byte of data to travel with", nameof(data));
        }

        foreach (int descriptor in descriptors)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(descriptor, nameof(descriptors));
        }

        int payload = descriptors.Length * sizeof(int);
        int controlSpace = descriptors.IsEmpty ? 0 : ControlMessageHeader.SpaceFor(payload);
        ulong* control = stackalloc ulong[controlSpace / sizeof(ulong)];
        if (!descriptors.IsEmpty)
        {
            var message = (ControlMessageHeader*)control;
            message->Length = (nuint)ControlMessageHeader.LengthFor(payload);
            message->Level = ControlMessageHeader.SocketLevel;
            message->Type = ControlMessageHeader.Rights;
            descriptors.CopyTo(new Span<int>((byte*)control + ControlMessageHeader.HeaderSpace, descriptors.Length));
        }

        bool referenced = false;
        try
        {
            socket.DangerousAddRef(ref referenced);
            int fd = (int)socket.DangerousGetHandle();
            fixed (byte* bytes = data)
            {
                var vector = new IoVector { Base = bytes, Length = (nuint)data.Length };
                var header = new SocketMessageHeader
                {
                    Vectors = &vector,
                    VectorCount = 1,
                    Control = controlSpace == 0 ? null : (byte*)control,
                    ControlLength = (nuint)controlSpace,
                };
                while (true)
                {
                    nint result = LibC.sendmsg(fd, &header, LibC.MSG_NOSIGNAL);
                    if (result >= 0)
                    {
                        return (int)result;
                    }

                    int errno = Marshal.GetLastPInvokeError();
                    if (errno != Errno.EINTR)
                    {
                        throw new NativeCallException("sendmsg", errno, $"{Describe(socket, data.Length)}, {descriptors.Length} fds");
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

    private static unsafe void CollectDescriptors(byte* control, int length, List<FileDescriptorHandle> descriptors)
    {
        int offset = 0;
        while (offset + ControlMessageHeader.HeaderSpace <= length)
        {
            var message = (ControlMessageHeader*)(control + offset);
            int messageLength = (int)message->Length;
            if (messageLength < ControlMessageHeader.HeaderSpace || offset + messageLength > length)
            {
                break;
            }

            if (message->Level == ControlMessageHeader.SocketLevel && message->Type == ControlMessageHeader.Rights)
            {
                int* fds = (int*)(control + offset + ControlMessageHeader.HeaderSpace);
                int fdCount = (messageLength - ControlMessageHeader.HeaderSpace) / sizeof(int);
                for (int i = 0; i < fdCount; i++)
                {
                    descriptors.Add(FileDescriptorHandle.FromOwned(fds[i]));
                }
            }

            offset += ControlMessageHeader.Align(messageLength);
        }
    }

    private static string Describe(SafeHandle socket, int length)
        => $"fd {(socket.IsClosed ? -1 : (int)socket.DangerousGetHandle())}, {length}";
}
