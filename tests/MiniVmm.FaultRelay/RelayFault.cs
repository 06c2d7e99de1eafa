namespace MiniVmm.FaultRelay;

/// <summary>What the relay does to the bytes from the source to the destination.</summary>
public enum RelayFault
{
    /// <summary>Forwards everything at once.</summary>
    Pass,

    /// <summary>Holds each chunk for <see cref="RelaySettings.DelayMilliseconds"/> before forwarding it.</summary>
    Delay,

    /// <summary>Forwards at most <see cref="RelaySettings.BytesPerSecond"/>.</summary>
    Throttle,

    /// <summary>
    /// Forwards nothing more and stops reading: the bytes already taken stay in the relay, the
    /// kernel buffers fill, and the source's kernel sees no more acks (a destination that hangs).
    /// </summary>
    Stall,

    /// <summary>Keeps reading from the source (so its kernel acks every byte) and drops it all.</summary>
    Blackhole,

    /// <summary>Closes both connections (a reset, not a clean close).</summary>
    Cut,
}
