using System.Runtime.InteropServices;

namespace MiniVmm.Native;

/// <summary>
/// The x86_64 Linux <c>struct cmsghdr</c> that starts each ancillary message (16 bytes), and the
/// CMSG_* arithmetic: headers and payloads are padded to 8 bytes.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ControlMessageHeader
{
    /// <summary>SOL_SOCKET: the level of socket-layer ancillary messages.</summary>
    public const int SocketLevel = 1;

    /// <summary>SCM_RIGHTS: the payload is an array of file descriptors.</summary>
    public const int Rights = 1;

    /// <summary>cmsg_len: header plus payload, without the trailing padding.</summary>
    public nuint Length;

    /// <summary>cmsg_level, e.g. <see cref="SocketLevel"/>.</summary>
    public int Level;

    /// <summary>cmsg_type, e.g. <see cref="Rights"/>.</summary>
    public int Type;

    /// <summary>The header size padded to the alignment: where the payload starts (CMSG_DATA).</summary>
    public static int HeaderSpace => Align(sizeof(ulong) + 2 * sizeof(int));

    /// <summary>Rounds <paramref name="length"/> up to a multiple of 8 (CMSG_ALIGN).</summary>
    public static int Align(int length) => (length + 7) & ~7;

    /// <summary>The cmsg_len of a message with <paramref name="payload"/> bytes (CMSG_LEN).</summary>
    public static int LengthFor(int payload) => HeaderSpace + payload;

    /// <summary>The buffer space one message with <paramref name="payload"/> bytes takes (CMSG_SPACE).</summary>
    public static int SpaceFor(int payload) => HeaderSpace + Align(payload);
}
