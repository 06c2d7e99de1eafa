namespace MiniVmm.Native;

/// <summary>The host's memory page size.</summary>
public static class SystemPage
{
    /// <summary>The page size in bytes (4096 on x86_64).</summary>
    public static int Size => Environment.SystemPageSize;

    /// <summary>Rounds <paramref name="value"/> up to a multiple of the page size.</summary>
    public static long RoundUp(long value) => (value + Size - 1) & ~(long)(Size - 1);

    /// <summary>Whether <paramref name="value"/> is a multiple of the page size.</summary>
    public static bool IsAligned(long value) => (value & (Size - 1)) == 0;
}
