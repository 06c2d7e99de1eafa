using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MiniVmm.Migration.Ram;

/// <summary>
/// The zero-page test behind ZERO records (QEMU's <c>buffer_is_zero</c>): whether every byte of
/// a buffer is 0. Reads 256 bytes per step with the widest vectors the CPU has and stops at the
/// first step holding a non-zero byte, so data pages usually cost one step.
/// </summary>
public static class ZeroPage
{
    private const int Step = 256;

    /// <summary>True when every byte of <paramref name="buffer"/> is zero (an empty buffer is).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public static bool IsZero(ReadOnlySpan<byte> buffer)
    {
        if (buffer.Length >= Step && Vector512.IsHardwareAccelerated)
        {
            return IsZeroVector512(buffer);
        }

        if (buffer.Length >= Step && Vector256.IsHardwareAccelerated)
        {
            return IsZeroVector256(buffer);
        }

        return buffer.IndexOfAnyExcept((byte)0) < 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool IsZeroVector512(ReadOnlySpan<byte> buffer)
    {
        ref byte start = ref MemoryMarshal.GetReference(buffer);
        nuint length = (nuint)buffer.Length;
        nuint i = 0;
        for (; i + Step <= length; i += Step)
        {
            Vector512<byte> any = Vector512.LoadUnsafe(ref start, i)
                | Vector512.LoadUnsafe(ref start, i + 64)
                | Vector512.LoadUnsafe(ref start, i + 128)
                | Vector512.LoadUnsafe(ref start, i + 192);
            if (any != Vector512<byte>.Zero)
            {
                return false;
            }
        }

        return i == length || buffer[(int)i..].IndexOfAnyExcept((byte)0) < 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool IsZeroVector256(ReadOnlySpan<byte> buffer)
    {
        ref byte start = ref MemoryMarshal.GetReference(buffer);
        nuint length = (nuint)buffer.Length;
        nuint i = 0;
        for (; i + Step <= length; i += Step)
        {
            Vector256<byte> any = (Vector256.LoadUnsafe(ref start, i)
                    | Vector256.LoadUnsafe(ref start, i + 32)
                    | Vector256.LoadUnsafe(ref start, i + 64)
                    | Vector256.LoadUnsafe(ref start, i + 96))
                | (Vector256.LoadUnsafe(ref start, i + 128)
                    | Vector256.LoadUnsafe(ref start, i + 160)
                    | Vector256.LoadUnsafe(ref start, i + 192)
                    | Vector256.LoadUnsafe(ref start, i + 224));
            if (any != Vector256<byte>.Zero)
            {
                return false;
            }
        }

        return i == length || buffer[(int)i..].IndexOfAnyExcept((byte)0) < 0;
    }
}
