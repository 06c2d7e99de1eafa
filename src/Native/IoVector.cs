using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>
/// The x86_64 Linux <c>struct iovec</c>: one buffer of a scatter/gather call (16 bytes). The
/// memory it points at must not move while a call uses it (native memory, or a pinned array).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct IoVector
{
    /// <summary>iov_base: the buffer's start.</summary>
    public byte* Base;

    /// <summary>iov_len: the buffer's length in bytes.</summary>
    public nuint Length;

    /// <summary>A vector over <paramref name="length"/> bytes at <paramref name="start"/>.</summary>
    public IoVector(byte* start, nuint length)
    {
        Base = start;
        Length = length;
    }
}
