using System.Buffers.Binary;

namespace MiniVmm.GuestHarness.Protocol;

/// <summary>
/// The payloads of the guest-harness protocol, built and parsed in one place for MiniVmm's side,
/// its tests and anything that decodes a capture. Parsers check every length before they read.
/// </summary>
public static class HarnessPayloads
{
    /// <summary>The largest state a harness may save (SAVE_STATE's reply, LOAD_STATE's payload).</summary>
    public const int MaxStateBytes = 16 << 20;

    /// <summary>Bytes of a status, a feature set or a <c>u64</c> of any reply.</summary>
    public const int U64Length = 8;

    /// <summary>The highest THROTTLE percentage.</summary>
    public const int MaxThrottlePercent = 99;

    /// <summary>A <c>u64</c> payload: a status (0 or a negative errno) or a feature set.</summary>
    public static byte[] U64(ulong value)
    {
        var payload = new byte[U64Length];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, value);
        return payload;
    }

    /// <summary>A status payload: 0 for success, otherwise a negative errno.</summary>
    public static byte[] Status(long status) => U64((ulong)status);

    /// <summary>Reads a <c>u64</c> payload.</summary>
    /// <exception cref="HarnessProtocolException">The payload is not 8 bytes.</exception>
    public static ulong ReadU64(ReadOnlySpan<byte> payload, string what) =>
        payload.Length == U64Length
            ? BinaryPrimitives.ReadUInt64LittleEndian(payload)
            : throw new HarnessProtocolException($"{what}: expected an 8-byte payload, got {payload.Length} bytes");

    /// <summary>Reads a status reply: 0 or a negative errno.</summary>
    public static long ReadStatus(ReadOnlySpan<byte> payload, string what) => (long)ReadU64(payload, what);

    /// <summary>SET_MEM_TABLE: <c>u32 count, u32 0</c>, then one 64-byte entry per region.</summary>
    public static byte[] MemTable(IReadOnlyList<HarnessMemoryRegion> regions)
    {
        var payload = new byte[8 + regions.Count * HarnessMemoryRegion.EntryLength];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)regions.Count);
        for (int i = 0; i < regions.Count; i++)
        {
            regions[i].WriteTo(payload.AsSpan(8 + i * HarnessMemoryRegion.EntryLength));
        }

        return payload;
    }

    /// <summary>Reads a SET_MEM_TABLE payload.</summary>
    /// <exception cref="HarnessProtocolException">The count disagrees with the length, or the padding is not 0.</exception>
    public static IReadOnlyList<HarnessMemoryRegion> ReadMemTable(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 8)
        {
            throw new HarnessProtocolException($"SET_MEM_TABLE: {payload.Length} bytes is shorter than its 8-byte count");
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        uint padding = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        if (padding != 0 || (ulong)(payload.Length - 8) != count * (ulong)HarnessMemoryRegion.EntryLength)
        {
            throw new HarnessProtocolException(
                $"SET_MEM_TABLE: count {count} (padding {padding}) does not match {payload.Length - 8} bytes of entries");
        }

        var regions = new HarnessMemoryRegion[count];
        for (int i = 0; i < regions.Length; i++)
        {
            regions[i] = HarnessMemoryRegion.Read(payload[(8 + i * HarnessMemoryRegion.EntryLength)..]);
        }

        return regions;
    }

    /// <summary>SET_DIRTY_LOG: one 16-byte entry per region.</summary>
    public static byte[] DirtyLogs(IReadOnlyList<HarnessDirtyLog> logs)
    {
        var payload = new byte[logs.Count * HarnessDirtyLog.EntryLength];
        for (int i = 0; i < logs.Count; i++)
        {
            logs[i].WriteTo(payload.AsSpan(i * HarnessDirtyLog.EntryLength));
        }

        return payload;
    }

    /// <summary>Reads a SET_DIRTY_LOG payload.</summary>
    /// <exception cref="HarnessProtocolException">The length is not a whole number of entries.</exception>
    public static IReadOnlyList<HarnessDirtyLog> ReadDirtyLogs(ReadOnlySpan<byte> payload)
    {
        if (payload.Length % HarnessDirtyLog.EntryLength != 0)
        {
            throw new HarnessProtocolException(
                $"SET_DIRTY_LOG: {payload.Length} bytes is not a whole number of {HarnessDirtyLog.EntryLength}-byte entries");
        }

        var logs = new HarnessDirtyLog[payload.Length / HarnessDirtyLog.EntryLength];
        for (int i = 0; i < logs.Length; i++)
        {
            logs[i] = HarnessDirtyLog.Read(payload[(i * HarnessDirtyLog.EntryLength)..]);
        }

        return logs;
    }

    /// <summary>THROTTLE: <c>u32 percent</c>, 0 to <see cref="MaxThrottlePercent"/>.</summary>
    public static byte[] Throttle(int percent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(percent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, MaxThrottlePercent);
        var payload = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)percent);
        return payload;
    }

    /// <summary>
    /// The most payload bytes MiniVmm accepts in a frame from the harness that answers or makes
    /// <paramref name="request"/>: checked before anything is allocated.
    /// </summary>
    public static int MaxIncomingPayload(HarnessRequest request) =>
        request == HarnessRequest.SaveState ? MaxStateBytes : U64Length;
}
