using System.Collections.Immutable;

namespace MiniVmm.Migration.Control;

/// <summary>
/// The enabled migration capabilities, by QAPI name. Every name QEMU knows may be set (so
/// scripts work); the ones MiniVmm acts on are listed in <see cref="Supported"/>, and setting
/// any other to true is an error that says so.
/// </summary>
public sealed record MigrationCapabilities(ImmutableHashSet<string> Enabled)
{
    /// <summary>Capability <c>events</c>: emit MIGRATION and MIGRATION_PASS.</summary>
    public const string Events = "events";

    /// <summary>Capability <c>switchover-ack</c>: wait for the destination's ack before switching over.</summary>
    public const string SwitchoverAck = "switchover-ack";

    /// <summary>Capability <c>return-path</c>: the destination answers on the migration connection (PONG, SHUT, SWITCHOVER_ACK).</summary>
    public const string ReturnPath = "return-path";

    /// <summary>Capability <c>pause-before-switchover</c>: stop in pre-switchover until migrate-continue.</summary>
    public const string PauseBeforeSwitchover = "pause-before-switchover";

    /// <summary>Capability <c>auto-converge</c>: throttle the guest when it dirties faster than we send.</summary>
    public const string AutoConverge = "auto-converge";

    /// <summary>Capability <c>multifd</c>: RAM data pages go on <c>multifd-channels</c> extra connections, QEMU 7.2's format.</summary>
    public const string Multifd = "multifd";

    /// <summary>Nothing enabled (QEMU's default).</summary>
    public static MigrationCapabilities None { get; } = new([]);

    /// <summary>Every capability name of QEMU 7.2 plus master's additions, in QEMU's order.</summary>
    public static IReadOnlyList<string> Known { get; } =
    [
        "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events", "postcopy-ram",
        "x-colo", "release-ram", "block", "return-path", "pause-before-switchover", "multifd",
        "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "x-ignore-shared", "validate-uuid",
        "background-snapshot", "zero-copy-send", "postcopy-preempt", "switchover-ack", "dirty-limit",
    ];

    /// <summary>The capabilities MiniVmm implements.</summary>
    public static IReadOnlySet<string> Supported { get; } =
        ImmutableHashSet.Create(Events, PauseBeforeSwitchover, AutoConverge, ReturnPath, SwitchoverAck, Multifd);

    /// <summary>
    /// QEMU's <c>migrate_caps_check</c> for the combinations MiniVmm knows: switchover-ack
    /// needs the return path its ack travels on.
    /// </summary>
    /// <exception cref="ArgumentException">The combination is not allowed; the message is QEMU's.</exception>
    public void Validate()
    {
        if (IsEnabled(SwitchoverAck) && !IsEnabled(ReturnPath))
        {
            throw new ArgumentException("Capability 'switchover-ack' requires capability 'return-path'");
        }
    }

    /// <summary>Whether <paramref name="name"/> is on.</summary>
    public bool IsEnabled(string name) => Enabled.Contains(name);

    /// <summary>Returns a copy with <paramref name="name"/> set; throws <see cref="ArgumentException"/> for unknown or unimplemented ones.</summary>
    public MigrationCapabilities With(string name, bool state)
    {
        if (!Known.Contains(name))
        {
            throw new ArgumentException($"Parameter 'capability' does not accept value '{name}'");
        }

        if (state && !Supported.Contains(name))
        {
            throw new ArgumentException($"Capability '{name}' is not supported by MiniVmm");
        }

        return new MigrationCapabilities(state ? Enabled.Add(name) : Enabled.Remove(name));
    }
}
