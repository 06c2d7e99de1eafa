namespace MiniVmm.Migration.Control;

/// <summary>
/// Migration parameters with QEMU 7.2's names (in <see cref="MigrationParameterNames"/>) and
/// defaults. MiniVmm acts on <see cref="MaxBandwidth"/> and <see cref="DowntimeLimit"/>; the
/// others are accepted, validated and reported so that scripts written for QEMU work.
/// </summary>
public sealed record MigrationParameters
{
    /// <summary>Bytes per second the source may send; 0 means unlimited. QEMU's default is 128 MiB/s.</summary>
    public long MaxBandwidth { get; init; } = 128L << 20;

    /// <summary>The longest pause of the guest the switchover may cause, in milliseconds.</summary>
    public long DowntimeLimit { get; init; } = 300;

    /// <summary><c>announce-initial</c>, ms.</summary>
    public long AnnounceInitial { get; init; } = 50;

    /// <summary><c>announce-max</c>, ms.</summary>
    public long AnnounceMax { get; init; } = 550;

    /// <summary><c>announce-rounds</c>.</summary>
    public long AnnounceRounds { get; init; } = 5;

    /// <summary><c>announce-step</c>, ms.</summary>
    public long AnnounceStep { get; init; } = 100;

    /// <summary><c>throttle-trigger-threshold</c>, percent.</summary>
    public long ThrottleTriggerThreshold { get; init; } = 50;

    /// <summary><c>cpu-throttle-initial</c>, percent.</summary>
    public long CpuThrottleInitial { get; init; } = 20;

    /// <summary><c>cpu-throttle-increment</c>, percent.</summary>
    public long CpuThrottleIncrement { get; init; } = 10;

    /// <summary><c>cpu-throttle-tailslow</c>.</summary>
    public bool CpuThrottleTailslow { get; init; }

    /// <summary>
    /// <c>x-throttle-computed</c> (MiniVmm's own): auto-converge sets the throttle from the measured
    /// dirty rate and bandwidth at the first sync that trips the trigger, instead of QEMU's step
    /// of <see cref="CpuThrottleIncrement"/> every second tripped sync (see <see cref="AutoConvergePolicy"/>).
    /// On by default; off gives QEMU 7.2's rule exactly.
    /// </summary>
    public bool XThrottleComputed { get; init; } = true;

    /// <summary>
    /// <c>avail-switchover-bandwidth</c> (QEMU 8.2's name), bytes per second: the bandwidth the
    /// switchover decision and expected downtime assume; 0 = the measured estimate.
    /// </summary>
    public long AvailSwitchoverBandwidth { get; init; }

    /// <summary><c>max-cpu-throttle</c>, percent.</summary>
    public long MaxCpuThrottle { get; init; } = 99;

    /// <summary><c>x-checkpoint-delay</c>, ms.</summary>
    public long XCheckpointDelay { get; init; } = 20000;

    /// <summary><c>max-postcopy-bandwidth</c>, bytes per second (0 = unlimited).</summary>
    public long MaxPostcopyBandwidth { get; init; }

    /// <summary><c>multifd-channels</c>.</summary>
    public long MultifdChannels { get; init; } = 2;

    /// <summary><c>xbzrle-cache-size</c>, bytes.</summary>
    public long XbzrleCacheSize { get; init; } = 64L << 20;

    /// <summary>
    /// <c>tls-creds</c>: the id of a <c>tls-creds-x509</c> object; when set, migration connections
    /// run TLS (the source as client, the destination as server). "" = plain, QEMU's default.
    /// </summary>
    public string TlsCreds { get; init; } = "";

    /// <summary>
    /// <c>tls-hostname</c>: the name the destination's certificate must carry; "" = the host of a
    /// <c>tcp:</c> URI (needed for <c>unix:</c> and <c>fd:</c>).
    /// </summary>
    public string TlsHostname { get; init; } = "";

    /// <summary><c>tls-authz</c>: QEMU's authorization object id; MiniVmm has none, so only "" is accepted.</summary>
    public string TlsAuthz { get; init; } = "";

    /// <summary>
    /// <c>x-stall-timeout</c>, ms (MiniVmm's own): a migration that makes no progress for this
    /// long fails with a <see cref="MiniVmm.Migration.Stall.MigrationStalledException"/>, on the
    /// source and, set before <c>migrate-incoming</c> (or at any time before the stall), on the
    /// destination. 0 = off, as QEMU, which waits on TCP.
    /// </summary>
    public long XStallTimeout { get; init; } = 30_000;

    /// <summary>Whether migration connections run TLS.</summary>
    public bool UsesTls => TlsCreds.Length > 0;

    /// <summary>Bytes the rate limiter allows per 100 ms window (0 = unlimited).</summary>
    public long BytesPerWindow => MaxBandwidth <= 0 ? 0 : Math.Max(1, MaxBandwidth / 10);
}
