using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>
/// Every native call of MiniVmm: the libc entry points, declared once, Linux x86_64 only.
/// Callers read errno with <see cref="Marshal.GetLastPInvokeError"/>.
/// </summary>
internal static unsafe partial class LibC
{
    private const string Library = "libc";

    internal const int F_DUPFD_CLOEXEC = 1030;
    internal const int F_GETFD = 1;
    internal const int F_SETFD = 2;
    internal const int F_GETFL = 3;
    internal const int F_SETFL = 4;
    internal const int FD_CLOEXEC = 1;
    internal const int F_ADD_SEALS = 1033;
    internal const int F_GET_SEALS = 1034;
    internal const int O_NONBLOCK = 0x800;
    internal const int SEEK_DATA = 3;
    internal const int SEEK_HOLE = 4;
    internal const int AF_UNIX = 1;
    internal const int SOCK_STREAM = 1;
    internal const int SOCK_CLOEXEC = 0x80000;
    internal const int MSG_CTRUNC = 0x8;
    internal const int MSG_DONTWAIT = 0x40;
    internal const int MSG_WAITALL = 0x100;
    internal const int MSG_NOSIGNAL = 0x4000;
    internal const int MSG_CMSG_CLOEXEC = 0x40000000;

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int close(int fd);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint read(FileDescriptorHandle fd, byte* buffer, nuint count);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint write(FileDescriptorHandle fd, byte* buffer, nuint count);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial long lseek(FileDescriptorHandle fd, long offset, int whence);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int ftruncate(FileDescriptorHandle fd, long length);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int shutdown(FileDescriptorHandle fd, int how);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int gettid();

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int setpriority(int which, int who, int priority);

    internal const int PRIO_PROCESS = 0;

    internal const int SHUT_RDWR = 2;

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int fstat(FileDescriptorHandle fd, FileStatus* status);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int ioctl(FileDescriptorHandle fd, ulong request, nint argument);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int fcntl(FileDescriptorHandle fd, int command, int argument);

    /// <summary>fcntl(F_DUPFD_CLOEXEC): the result is owned from the moment it exists.</summary>
    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial FileDescriptorHandle fcntl_duplicate(FileDescriptorHandle fd, int command, int lowest);

    [LibraryImport(Library, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial FileDescriptorHandle memfd_create(string name, uint flags);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial FileDescriptorHandle eventfd(uint initialValue, int flags);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int pipe2(int* fds, int flags);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint mmap(nint address, nuint length, int protection, int flags, FileDescriptorHandle fd, long offset);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int munmap(nint address, nuint length);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int madvise(nint address, nuint length, int advice);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int socketpair(int domain, int type, int protocol, int* fds);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint recvmsg(int socket, SocketMessageHeader* message, int flags);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint recv(int socket, byte* buffer, nuint length, int flags);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint sendmsg(int socket, SocketMessageHeader* message, int flags);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int poll(PollDescriptor* descriptors, nuint count, int timeoutMs);

    internal const short POLLIN = 0x1;
    internal const short POLLOUT = 0x4;
}

/// <summary>The Linux <c>struct pollfd</c> (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollDescriptor
{
    public int Descriptor;
    public short Events;
    public short ReturnedEvents;
}
