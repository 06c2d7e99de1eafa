using MiniVmm.Native;

namespace MiniVmm.Vfio;

/// <summary>
/// A VFIO migration request failed the way the kernel would fail it: <see cref="Errno"/> is the
/// errno the ioctl (or read/write on a data fd) would return, e.g. EINVAL for an unsupported or
/// blocked state transition.
/// </summary>
public sealed class VfioMigrationException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="errno">The errno the kernel returns for this failure.</param>
    /// <param name="message">What failed.</param>
    /// <param name="innerException">The underlying failure, if any.</param>
    public VfioMigrationException(int errno, string message, Exception? innerException = null)
        : base($"{message} ({Native.Errno.NameOf(errno)})", innerException)
    {
        Errno = errno;
        HResult = errno;
    }

    /// <summary>The errno value, e.g. <see cref="Native.Errno.EINVAL"/>.</summary>
    public int Errno { get; }

    /// <summary>The symbolic errno name, e.g. "EINVAL".</summary>
    public string ErrnoName => Native.Errno.NameOf(Errno);
}
