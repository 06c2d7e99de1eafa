using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>The x86_64 Linux <c>struct iovec</c>: one buffer of a scatter/gather call (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoVector
{
    /// <summary>iov_base: the buffer's start.</summary>
    public byte* Base;

    /// <summary>iov_len: the buffer's length in bytes.</summary>
    public nuint Length;
}
