namespace MiniVmm.Migration.Savevm;

/// <summary>The fixed values of a QEMU migration stream's file header.</summary>
public static class StreamHeader
{
    /// <summary>"QEVM" read as a big-endian 32-bit value.</summary>
    public const uint Magic = 0x5145564d;

    /// <summary>The only stream version QEMU still reads and writes.</summary>
    public const uint Version = 3;

    /// <summary>The obsolete version 2, which gets its own error message.</summary>
    public const uint ObsoleteVersion = 2;

    /// <summary>Target page size of x86, the only target MiniVmm speaks for.</summary>
    public const int TargetPageSize = 4096;
}
