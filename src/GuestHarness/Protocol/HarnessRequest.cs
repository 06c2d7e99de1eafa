namespace MiniVmm.GuestHarness.Protocol;

/// <summary>
/// The request numbers of the guest-harness protocol, v1 (<c>docs/guest-harness.md</c>). A reply
/// carries the number of the request it answers.
/// </summary>
public enum HarnessRequest : uint
{
    /// <summary>Harness → MiniVmm, first: <c>u64 features</c>; the reply holds the accepted features.</summary>
    Hello = 1,
    /// <summary>The RAM regions (64-byte entries), with one memfd per region.</summary>
    SetMemTable = 2,
    /// <summary>One dirty log per region (<c>u64 log_size, u64 mmap_offset</c>), with one memfd each.</summary>
    SetDirtyLog = 3,
    /// <summary>Start the vCPUs; answered once they run.</summary>
    Run = 4,
    /// <summary>Stop the vCPUs; answered once nothing writes guest memory and every write is marked.</summary>
    Pause = 5,
    /// <summary>The harness's state; the reply's payload is the state bytes.</summary>
    SaveState = 6,
    /// <summary>State bytes for the harness to take over; a nonzero status refuses them.</summary>
    LoadState = 7,
    /// <summary>The harness replies and exits.</summary>
    Shutdown = 8,
    /// <summary><c>u32 percent</c>: the share of every 10 ms each vCPU sleeps (auto-converge).</summary>
    Throttle = 9,
}
