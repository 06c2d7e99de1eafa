namespace MiniVmm.Native;

/// <summary>Linux x86_64 errno values, and their symbolic names.</summary>
public static class Errno
{
    /// <summary>Operation not permitted.</summary>
    public const int EPERM = 1;
    /// <summary>No such file or directory.</summary>
    public const int ENOENT = 2;
    /// <summary>No such process.</summary>
    public const int ESRCH = 3;
    /// <summary>Interrupted system call.</summary>
    public const int EINTR = 4;
    /// <summary>Input/output error.</summary>
    public const int EIO = 5;
    /// <summary>No such device or address.</summary>
    public const int ENXIO = 6;
    /// <summary>Argument list too long.</summary>
    public const int E2BIG = 7;
    /// <summary>Exec format error.</summary>
    public const int ENOEXEC = 8;
    /// <summary>Bad file descriptor.</summary>
    public const int EBADF = 9;
    /// <summary>No child processes.</summary>
    public const int ECHILD = 10;
    /// <summary>Resource temporarily unavailable (also EWOULDBLOCK).</summary>
    public const int EAGAIN = 11;
    /// <summary>Cannot allocate memory.</summary>
    public const int ENOMEM = 12;
    /// <summary>Permission denied.</summary>
    public const int EACCES = 13;
    /// <summary>Bad address.</summary>
    public const int EFAULT = 14;
    /// <summary>Block device required.</summary>
    public const int ENOTBLK = 15;
    /// <summary>Device or resource busy.</summary>
    public const int EBUSY = 16;
    /// <summary>File exists.</summary>
    public const int EEXIST = 17;
    /// <summary>Invalid cross-device link.</summary>
    public const int EXDEV = 18;
    /// <summary>No such device.</summary>
    public const int ENODEV = 19;
    /// <summary>Not a directory.</summary>
    public const int ENOTDIR = 20;
    /// <summary>Is a directory.</summary>
    public const int EISDIR = 21;
    /// <summary>Invalid argument.</summary>
    public const int EINVAL = 22;
    /// <summary>Too many open files in system.</summary>
    public const int ENFILE = 23;
    /// <summary>Too many open files.</summary>
    public const int EMFILE = 24;
    /// <summary>Inappropriate ioctl for device.</summary>
    public const int ENOTTY = 25;
    /// <summary>Text file busy.</summary>
    public const int ETXTBSY = 26;
    /// <summary>File too large.</summary>
    public const int EFBIG = 27;
    /// <summary>No space left on device.</summary>
    public const int ENOSPC = 28;
    /// <summary>Illegal seek.</summary>
    public const int ESPIPE = 29;
    /// <summary>Read-only file system.</summary>
    public const int EROFS = 30;
    /// <summary>Too many links.</summary>
    public const int EMLINK = 31;
    /// <summary>Broken pipe.</summary>
    public const int EPIPE = 32;
    /// <summary>Numerical argument out of domain.</summary>
    public const int EDOM = 33;
    /// <summary>Numerical result out of range.</summary>
    public const int ERANGE = 34;
    /// <summary>Resource deadlock avoided.</summary>
    public const int EDEADLK = 35;
    /// <summary>File name too long.</summary>
    public const int ENAMETOOLONG = 36;
    /// <summary>No locks available.</summary>
    public const int ENOLCK = 37;
    /// <summary>Function not implemented.</summary>
    public const int ENOSYS = 38;
    /// <summary>Directory not empty.</summary>
    public const int ENOTEMPTY = 39;
    /// <summary>Too many levels of symbolic links.</summary>
    public const int ELOOP = 40;
    /// <summary>No message of desired type.</summary>
    public const int ENOMSG = 42;
    /// <summary>Value too large for defined data type.</summary>
    public const int EOVERFLOW = 75;
    /// <summary>Socket operation on non-socket.</summary>
    public const int ENOTSOCK = 88;
    /// <summary>Operation not supported.</summary>
    public const int EOPNOTSUPP = 95;
    /// <summary>Address already in use.</summary>
    public const int EADDRINUSE = 98;
    /// <summary>Connection reset by peer.</summary>
    public const int ECONNRESET = 104;
    /// <summary>Transport endpoint is not connected.</summary>
    public const int ENOTCONN = 107;
    /// <summary>Connection timed out.</summary>
    public const int ETIMEDOUT = 110;
    /// <summary>Connection refused.</summary>
    public const int ECONNREFUSED = 111;
    /// <summary>Operation canceled.</summary>
    public const int ECANCELED = 125;

    /// <summary>The symbolic name of <paramref name="errno"/>, e.g. "ENOMEM", or "errno N" when unknown.</summary>
    public static string NameOf(int errno) => errno switch
    {
        EPERM => nameof(EPERM),
        ENOENT => nameof(ENOENT),
        ESRCH => nameof(ESRCH),
        EINTR => nameof(EINTR),
        EIO => nameof(EIO),
        ENXIO => nameof(ENXIO),
        E2BIG => nameof(E2BIG),
        ENOEXEC => nameof(ENOEXEC),
        EBADF => nameof(EBADF),
        ECHILD => nameof(ECHILD),
        EAGAIN => nameof(EAGAIN),
        ENOMEM => nameof(ENOMEM),
        EACCES => nameof(EACCES),
        EFAULT => nameof(EFAULT),
        ENOTBLK => nameof(ENOTBLK),
        EBUSY => nameof(EBUSY),
        EEXIST => nameof(EEXIST),
        EXDEV => nameof(EXDEV),
        ENODEV => nameof(ENODEV),
        ENOTDIR => nameof(ENOTDIR),
        EISDIR => nameof(EISDIR),
        EINVAL => nameof(EINVAL),
        ENFILE => nameof(ENFILE),
        EMFILE => nameof(EMFILE),
        ENOTTY => nameof(ENOTTY),
        ETXTBSY => nameof(ETXTBSY),
        EFBIG => nameof(EFBIG),
        ENOSPC => nameof(ENOSPC),
        ESPIPE => nameof(ESPIPE),
        EROFS => nameof(EROFS),
        EMLINK => nameof(EMLINK),
        EPIPE => nameof(EPIPE),
        EDOM => nameof(EDOM),
        ERANGE => nameof(ERANGE),
        EDEADLK => nameof(EDEADLK),
        ENAMETOOLONG => nameof(ENAMETOOLONG),
        ENOLCK => nameof(ENOLCK),
        ENOSYS => nameof(ENOSYS),
        ENOTEMPTY => nameof(ENOTEMPTY),
        ELOOP => nameof(ELOOP),
        ENOMSG => nameof(ENOMSG),
        EOVERFLOW => nameof(EOVERFLOW),
        ENOTSOCK => nameof(ENOTSOCK),
        EOPNOTSUPP => nameof(EOPNOTSUPP),
        EADDRINUSE => nameof(EADDRINUSE),
        ECONNRESET => nameof(ECONNRESET),
        ENOTCONN => nameof(ENOTCONN),
        ETIMEDOUT => nameof(ETIMEDOUT),
        ECONNREFUSED => nameof(ECONNREFUSED),
        ECANCELED => nameof(ECANCELED),
        _ => $"errno {errno}",
    };
}
