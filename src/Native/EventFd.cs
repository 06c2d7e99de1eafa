namespace MiniVmm.Native;

/// <summary>Event counters (eventfd(2)): signal adds to a 64-bit counter, wait takes it.</summary>
public static class EventFd
{
    /// <summary>Creates an eventfd whose counter starts at <paramref name="initialValue"/>.</summary>
    public static FileDescriptorHandle Create(uint initialValue = 0, EventFdFlags flags = EventFdFlags.CloseOnExec)
        => LibC.eventfd(initialValue, (int)flags).ValidOrThrow("eventfd", $"{initialValue}, 0x{(int)flags:X}");

    /// <summary>Adds <paramref name="value"/> to the counter, waking any waiter.</summary>
    public static void Signal(FileDescriptorHandle eventFd, ulong value = 1)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        Span<byte> buffer = stackalloc byte[sizeof(ulong)];
        BitConverter.TryWriteBytes(buffer, value);
        eventFd.WriteAll(buffer);
    }

    /// <summary>
    /// Blocks until the counter is non-zero, then returns it and resets it to zero
    /// (or returns 1 and decrements it in semaphore mode).
    /// </summary>
    public static ulong Wait(FileDescriptorHandle eventFd)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        Span<byte> buffer = stackalloc byte[sizeof(ulong)];
        eventFd.ReadExactly(buffer);
        return BitConverter.ToUInt64(buffer);
    }

    /// <summary>Like <see cref="Wait"/> on a nonblocking eventfd; false when the counter is zero (EAGAIN).</summary>
    public static bool TryRead(FileDescriptorHandle eventFd, out ulong value)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        Span<byte> buffer = stackalloc byte[sizeof(ulong)];
        if (!eventFd.TryRead(buffer, out int count))
        {
            value = 0;
            return false;
        }
        if (count != sizeof(ulong))
        {
            throw new IOException($"read({eventFd}) returned {count} bytes instead of an 8-byte eventfd counter");
        }
        value = BitConverter.ToUInt64(buffer);
        return true;
    }
}
