using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>An owned Linux file descriptor, closed with close(2) when released.</summary>
public sealed class FileDescriptorHandle : SafeHandle
{
    /// <summary>Creates an invalid handle (fd -1); used by the interop layer to receive new descriptors.</summary>
    public FileDescriptorHandle() : base(-1, ownsHandle: true)
    {
    }

    private FileDescriptorHandle(int fd, bool ownsHandle) : base(-1, ownsHandle)
    {
        SetHandle(fd);
    }

    /// <inheritdoc/>
    public override bool IsInvalid => handle < 0;

    /// <summary>The descriptor number; valid only while this handle is open.</summary>
    public int Number => (int)handle;

    /// <summary>Takes ownership of <paramref name="fd"/>: disposing the handle closes it.</summary>
    public static FileDescriptorHandle FromOwned(int fd)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fd);
        return new FileDescriptorHandle(fd, ownsHandle: true);
    }

    /// <summary>Wraps <paramref name="fd"/> without taking ownership: disposing the handle leaves it open.</summary>
    public static FileDescriptorHandle FromBorrowed(int fd)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fd);
        return new FileDescriptorHandle(fd, ownsHandle: false);
    }

    /// <summary>Reads up to <c>buffer.Length</c> bytes; returns 0 at end of file. Retries on EINTR.</summary>
    public int Read(Span<byte> buffer)
    {
        if (TryRead(buffer, out int count))
        {
            return count;
        }
        throw new NativeCallException("read", Errno.EAGAIN, $"fd {Number}, {buffer.Length}");
    }

    /// <summary>
    /// Reads like <see cref="Read"/>, but returns false instead of throwing when a nonblocking
    /// descriptor has nothing to read (EAGAIN).
    /// </summary>
    public unsafe bool TryRead(Span<byte> buffer, out int count)
    {
        fixed (byte* pointer = buffer)
        {
            while (true)
            {
                nint result = LibC.read(this, pointer, (nuint)buffer.Length);
                if (result >= 0)
                {
                    count = (int)result;
                    return true;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EAGAIN)
                {
                    count = 0;
                    return false;
                }
                if (errno != Errno.EINTR)
                {
                    throw new NativeCallException("read", errno, $"fd {Number}, {buffer.Length}");
                }
            }
        }
    }

    /// <summary>Writes up to <c>buffer.Length</c> bytes and returns how many were written. Retries on EINTR.</summary>
    public unsafe int Write(ReadOnlySpan<byte> buffer)
    {
        fixed (byte* pointer = buffer)
        {
            while (true)
            {
                nint result = LibC.write(this, pointer, (nuint)buffer.Length);
                if (result >= 0)
                {
                    return (int)result;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                {
                    throw new NativeCallException("write", errno, $"fd {Number}, {buffer.Length}");
                }
            }
        }
    }

    /// <summary>Writes all of <paramref name="buffer"/>, looping over short writes.</summary>
    public void WriteAll(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int written = Write(buffer);
            if (written == 0)
            {
                throw new IOException($"write(fd {Number}) wrote nothing with {buffer.Length} bytes left");
            }
            buffer = buffer[written..];
        }
    }

    /// <summary>Fills <paramref name="buffer"/> completely, or throws <see cref="EndOfStreamException"/>.</summary>
    public void ReadExactly(Span<byte> buffer)
    {
        int total = buffer.Length;
        while (!buffer.IsEmpty)
        {
            int count = Read(buffer);
            if (count == 0)
            {
                throw new EndOfStreamException(
                    $"End of file on fd {Number}: {buffer.Length} of {total} bytes missing");
            }
            buffer = buffer[count..];
        }
    }

    /// <summary>
    /// Shuts a socket down in both directions with shutdown(2), waking any thread blocked in a
    /// read or write on it. Returns false when the descriptor is not a socket (ENOTSOCK), is
    /// not connected, or is already closed.
    /// </summary>
    public bool TryShutdownSocket()
    {
        if (IsClosed)
        {
            return false;
        }

        if (LibC.shutdown(this, LibC.SHUT_RDWR) == 0)
        {
            return true;
        }

        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        return errno is Errno.ENOTSOCK or Errno.ENOTCONN
            ? false
            : throw NativeCallException.FromLastError("shutdown", $"fd {Number}");
    }

    /// <summary>Sets the file size with ftruncate(2).</summary>
    public void Truncate(long size)
    {
        if (LibC.ftruncate(this, size) < 0)
        {
            throw NativeCallException.FromLastError("ftruncate", $"fd {Number}, {size}");
        }
    }

    /// <summary>
    /// The first offset at or after <paramref name="offset"/> that holds data (lseek SEEK_DATA),
    /// or -1 when only a hole follows up to the end of the file. Moves the file position.
    /// </summary>
    public long SeekData(long offset) => SeekExtent(offset, LibC.SEEK_DATA, "SEEK_DATA");

    /// <summary>
    /// The first offset at or after <paramref name="offset"/> that is in a hole (lseek SEEK_HOLE;
    /// the end of the file counts as one), or -1 when <paramref name="offset"/> is past the end.
    /// Moves the file position.
    /// </summary>
    public long SeekHole(long offset) => SeekExtent(offset, LibC.SEEK_HOLE, "SEEK_HOLE");

    /// <summary>The file size in bytes, from fstat(2).</summary>
    public long Size => Status().Size;

    /// <summary>The file's preferred I/O size (st_blksize): for a hugetlb memfd, its huge page size.</summary>
    public long BlockSize => Status().BlockSize;

    private unsafe FileStatus Status()
    {
        FileStatus status;
        if (LibC.fstat(this, &status) < 0)
        {
            throw NativeCallException.FromLastError("fstat", $"fd {Number}");
        }

        return status;
    }

    /// <summary>Issues ioctl(2) with an integer argument; returns its non-negative result.</summary>
    public int Ioctl(ulong request, nint argument)
    {
        int result = LibC.ioctl(this, request, argument);
        if (result < 0)
        {
            throw NativeCallException.FromLastError("ioctl", $"fd {Number}, 0x{request:X}");
        }
        return result;
    }

    /// <summary>Issues ioctl(2) with a pointer argument; returns its non-negative result.</summary>
    public unsafe int Ioctl(ulong request, void* argument) => Ioctl(request, (nint)argument);

    /// <summary>The file status flags (fcntl F_GETFL), e.g. O_NONBLOCK.</summary>
    public int GetStatusFlags() => Fcntl(LibC.F_GETFL, 0, "F_GETFL");

    /// <summary>Replaces the file status flags (fcntl F_SETFL).</summary>
    public void SetStatusFlags(int flags) => Fcntl(LibC.F_SETFL, flags, "F_SETFL");

    /// <summary>Whether O_NONBLOCK is set on the open file description.</summary>
    public bool NonBlocking
    {
        get => (GetStatusFlags() & LibC.O_NONBLOCK) != 0;
        set
        {
            int flags = GetStatusFlags();
            SetStatusFlags(value ? flags | LibC.O_NONBLOCK : flags & ~LibC.O_NONBLOCK);
        }
    }

    /// <summary>Whether FD_CLOEXEC is set on this descriptor.</summary>
    public bool CloseOnExec
    {
        get => (Fcntl(LibC.F_GETFD, 0, "F_GETFD") & LibC.FD_CLOEXEC) != 0;
        set
        {
            int flags = Fcntl(LibC.F_GETFD, 0, "F_GETFD");
            Fcntl(LibC.F_SETFD, value ? flags | LibC.FD_CLOEXEC : flags & ~LibC.FD_CLOEXEC, "F_SETFD");
        }
    }

    /// <summary>
    /// Adds seals to a memfd created with <see cref="MemfdFlags.AllowSealing"/> (fcntl F_ADD_SEALS):
    /// e.g. <see cref="FileSeals.Shrink"/>, so that nobody holding the descriptor (a guest harness)
    /// can truncate the file under another process's mapping.
    /// </summary>
    public void AddSeals(FileSeals seals) => Fcntl(LibC.F_ADD_SEALS, (int)seals, "F_ADD_SEALS");

    /// <summary>The seals the file carries (fcntl F_GET_SEALS).</summary>
    public FileSeals Seals => (FileSeals)Fcntl(LibC.F_GET_SEALS, 0, "F_GET_SEALS");

    /// <summary>A new descriptor for the same open file, with close-on-exec set (F_DUPFD_CLOEXEC).</summary>
    public FileDescriptorHandle Duplicate()
    {
        return LibC.fcntl_duplicate(this, LibC.F_DUPFD_CLOEXEC, 0)
            .ValidOrThrow("fcntl", $"fd {Number}, F_DUPFD_CLOEXEC");
    }

    /// <inheritdoc/>
    public override string ToString() => IsClosed ? "fd (closed)" : $"fd {Number}";

    /// <inheritdoc/>
    protected override bool ReleaseHandle()
    {
        // No retry on EINTR: Linux releases the descriptor even when close reports it.
        return LibC.close((int)handle) == 0;
    }

    /// <summary>Returns this handle when a call produced a descriptor, else throws the call's errno.</summary>
    internal FileDescriptorHandle ValidOrThrow(string call, string arguments)
    {
        if (!IsInvalid)
        {
            return this;
        }
        var error = NativeCallException.FromLastError(call, arguments);
        Dispose();
        throw error;
    }

    private long SeekExtent(long offset, int whence, string whenceName)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        long result = LibC.lseek(this, offset, whence);
        if (result >= 0)
        {
            return result;
        }
        int errno = Marshal.GetLastPInvokeError();
        if (errno == Errno.ENXIO)
        {
            return -1;
        }
        throw new NativeCallException("lseek", errno, $"fd {Number}, {offset}, {whenceName}");
    }

    private int Fcntl(int command, int argument, string commandName)
    {
        int result = LibC.fcntl(this, command, argument);
        if (result < 0)
        {
            throw NativeCallException.FromLastError("fcntl", $"fd {Number}, {commandName}");
        }
        return result;
    }
}
