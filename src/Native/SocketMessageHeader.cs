using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>The x86_64 Linux <c>struct msghdr</c> of sendmsg(2) and recvmsg(2) (56 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 56)]
internal unsafe struct SocketMessageHeader
{
    /// <summary>msg_name: the peer address (unused on connected sockets).</summary>
    [FieldOffset(0)] public void* Name;

    /// <summary>msg_namelen: the size of <see cref="Name"/>.</summary>
    [FieldOffset(8)] public uint NameLength;

    /// <summary>msg_iov: the data buffers.</summary>
    [FieldOffset(16)] public IoVector* Vectors;

    /// <summary>msg_iovlen: how many <see cref="Vectors"/> there are.</summary>
    [FieldOffset(24)] public nuint VectorCount;

    /// <summary>msg_control: the ancillary data buffer.</summary>
    [FieldOffset(32)] public byte* Control;

    /// <summary>msg_controllen: the ancillary buffer's size; recvmsg sets it to the size used.</summary>
    [FieldOffset(40)] public nuint ControlLength;

    /// <summary>msg_flags: set by recvmsg (e.g. MSG_CTRUNC).</summary>
    [FieldOffset(48)] public int Flags;
}
