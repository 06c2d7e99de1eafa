using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>A native call failed and set errno.</summary>
public sealed class NativeCallException : IOException
{
    /// <summary>Creates the exception for <paramref name="call"/> failing with <paramref name="errno"/>.</summary>
    /// <param name="call">The C function, e.g. "memfd_create".</param>
    /// <param name="errno">The errno value it set.</param>
    /// <param name="arguments">A short rendering of the arguments worth reporting, or null.</param>
    public NativeCallException(string call, int errno, string? arguments = null)
        : base(Describe(call, errno, arguments))
    {
        Call = call;
        Errno = errno;
        HResult = errno;
    }

    /// <summary>The C function that failed, e.g. "memfd_create".</summary>
    public string Call { get; }

    /// <summary>The errno value the call set.</summary>
    public int Errno { get; }

    /// <summary>The symbolic errno name, e.g. "ENOMEM".</summary>
    public string ErrnoName => Native.Errno.NameOf(Errno);

    /// <summary>What the errno means, as strerror(3) says it, e.g. "Cannot allocate memory".</summary>
    public string Reason => Marshal.GetPInvokeErrorMessage(Errno);

    /// <summary>Builds the exception from the errno saved by the last <c>SetLastError</c> P/Invoke.</summary>
    internal static NativeCallException FromLastError(string call, string? arguments = null)
        => new(call, Marshal.GetLastPInvokeError(), arguments);

    private static string Describe(string call, int errno, string? arguments)
        => $"{call}({arguments}) failed: {Native.Errno.NameOf(errno)} ({errno}): {Marshal.GetPInvokeErrorMessage(errno)}";
}
