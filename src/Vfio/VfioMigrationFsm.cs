using MiniVmm.Native;

namespace MiniVmm.Vfio;

/// <summary>
/// The kernel's migration state machine (<c>vfio_mig_get_next_state</c>): which single arc a
/// driver takes next on the way from one state to a requested one, for a given set of
/// migration flags. States a flag set does not support are skipped over exactly as the kernel
/// does; the blocked arcs STOP_COPY→PRE_COPY and STOP_COPY→PRE_COPY_P2P return EINVAL instead
/// of looping (as a proposed kernel fix does; see <c>docs/vfio.md</c>).
/// </summary>
public static class VfioMigrationFsm
{
    /// <summary>Number of defined states (<c>VFIO_DEVICE_STATE_NR</c>).</summary>
    public const int StateCount = 8;

    private const byte E = (byte)VfioDeviceState.Error;
    private const byte S = (byte)VfioDeviceState.Stop;
    private const byte R = (byte)VfioDeviceState.Running;
    private const byte SC = (byte)VfioDeviceState.StopCopy;
    private const byte RS = (byte)VfioDeviceState.Resuming;
    private const byte RP = (byte)VfioDeviceState.RunningP2P;
    private const byte PC = (byte)VfioDeviceState.PreCopy;
    private const byte PP = (byte)VfioDeviceState.PreCopyP2P;

    // The next hop assuming every optional feature is present: row = current state, column =
    // requested state, both in enum order (Error, Stop, Running, StopCopy, Resuming, RunningP2P,
    // PreCopy, PreCopyP2P). Error as a hop means the request is refused. (Constant data in the
    // assembly image: nothing here can be modified.)
    private static ReadOnlySpan<byte> FullFeatureHop =>
    [
        /* from Error      */ E, E, E, E, E, E, E, E,
        /* from Stop       */ E, S, RP, SC, RS, RP, RP, RP,
        /* from Running    */ E, RP, R, RP, RP, RP, PC, RP,
        /* from StopCopy   */ E, S, S, SC, S, S, E, E,
        /* from Resuming   */ E, S, S, S, RS, S, S, S,
        /* from RunningP2P */ E, S, R, S, S, RP, R, PP,
        /* from PreCopy    */ E, R, R, PP, R, R, PC, PP,
        /* from PreCopyP2P */ E, RP, RP, SC, RP, RP, PC, PP,
    ];

    /// <summary>
    /// The state a driver moves to next on the way from <paramref name="current"/> to
    /// <paramref name="requested"/> (one arc); <paramref name="requested"/> itself when they are equal.
    /// </summary>
    /// <exception cref="VfioMigrationException">
    /// EINVAL when <paramref name="current"/> or <paramref name="requested"/> is out of range or not
    /// supported by <paramref name="flags"/> (ERROR never is; flags without STOP_COPY support nothing),
    /// or when the transition is blocked (STOP_COPY→PRE_COPY, STOP_COPY→PRE_COPY_P2P).
    /// </exception>
    public static VfioDeviceState NextState(VfioMigrationFlags flags, VfioDeviceState current, VfioDeviceState requested)
    {
        if (!IsSupported(flags, current))
        {
            throw new VfioMigrationException(Errno.EINVAL,
                $"Current state {current} is not supported with migration flags {flags}");
        }
        if (!IsSupported(flags, requested))
        {
            throw new VfioMigrationException(Errno.EINVAL,
                $"Requested state {requested} is not supported with migration flags {flags}");
        }
        VfioDeviceState next = Hop(current, requested);
        // Skip optional states this device lacks. A hop of Error ends the walk: that is a
        // blocked transition, refused instead of looping forever.
        while (next != VfioDeviceState.Error && !IsSupported(flags, next))
        {
            next = Hop(next, requested);
        }
        if (next == VfioDeviceState.Error)
        {
            throw new VfioMigrationException(Errno.EINVAL,
                $"Transition {current} -> {requested} is blocked with migration flags {flags}");
        }
        return next;
    }

    /// <summary>
    /// The states a driver passes through from <paramref name="current"/> to
    /// <paramref name="requested"/>, one arc each, not including <paramref name="current"/> and
    /// ending with <paramref name="requested"/>; empty when the two are equal (the driver then does
    /// nothing, even in ERROR).
    /// </summary>
    /// <exception cref="VfioMigrationException">
    /// EINVAL when <paramref name="flags"/> lack STOP_COPY, a state is out of range, or
    /// <see cref="NextState"/> refuses the transition.
    /// </exception>
    public static IReadOnlyList<VfioDeviceState> Path(VfioMigrationFlags flags, VfioDeviceState current, VfioDeviceState requested)
    {
        if (!flags.HasFlag(VfioMigrationFlags.StopCopy))
        {
            throw new VfioMigrationException(Errno.EINVAL, $"Migration flags {flags} lack STOP_COPY");
        }
        if (!IsDefined(current) || !IsDefined(requested))
        {
            throw new VfioMigrationException(Errno.EINVAL,
                $"State {(IsDefined(current) ? requested : current)} is out of range");
        }
        var path = new List<VfioDeviceState>(4);
        VfioDeviceState state = current;
        while (state != requested)
        {
            state = NextState(flags, state, requested);
            path.Add(state);
            if (path.Count > StateCount)
            {
                throw new InvalidOperationException($"No end to the path {current} -> {requested} with {flags}");
            }
        }
        return path;
    }

    /// <summary>Whether a device with <paramref name="flags"/> has <paramref name="state"/> (never true for ERROR).</summary>
    public static bool IsSupported(VfioMigrationFlags flags, VfioDeviceState state)
    {
        VfioMigrationFlags needed = state switch
        {
            VfioDeviceState.Stop or VfioDeviceState.Running or VfioDeviceState.StopCopy or VfioDeviceState.Resuming
                => VfioMigrationFlags.StopCopy,
            VfioDeviceState.RunningP2P => VfioMigrationFlags.StopCopy | VfioMigrationFlags.P2P,
            VfioDeviceState.PreCopy => VfioMigrationFlags.StopCopy | VfioMigrationFlags.PreCopy,
            VfioDeviceState.PreCopyP2P
                => VfioMigrationFlags.StopCopy | VfioMigrationFlags.P2P | VfioMigrationFlags.PreCopy,
            _ => VfioMigrationFlags.None,
        };
        return needed != VfioMigrationFlags.None && (flags & needed) == needed;
    }

    /// <summary>Whether an arc into <paramref name="to"/> from <paramref name="from"/> opens a new data session (returns a data fd).</summary>
    public static bool OpensDataSession(VfioDeviceState from, VfioDeviceState to) => (from, to) switch
    {
        (VfioDeviceState.Running, VfioDeviceState.PreCopy) => true,
        (VfioDeviceState.RunningP2P, VfioDeviceState.PreCopyP2P) => true,
        (VfioDeviceState.Stop, VfioDeviceState.StopCopy) => true,
        (VfioDeviceState.Stop, VfioDeviceState.Resuming) => true,
        _ => false,
    };

    private static VfioDeviceState Hop(VfioDeviceState current, VfioDeviceState requested)
        => (VfioDeviceState)FullFeatureHop[(int)current * StateCount + (int)requested];

    private static bool IsDefined(VfioDeviceState state) => (uint)state < StateCount;
}
