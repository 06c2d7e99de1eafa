using MiniVmm.Devices.Models;
using MiniVmm.Host.Qmp;

namespace MiniVmm.Host.CommandLine;

/// <summary>What <c>minivmm run</c> was told to do, checked and decoded from QEMU's options.</summary>
public sealed record VmOptions
{
    /// <summary><c>-M</c>: the machine.</summary>
    public required MachineSelection Machine { get; init; }

    /// <summary><c>-m</c>: guest RAM in bytes (a multiple of 8 KiB, as QEMU rounds it).</summary>
    public required ulong MemoryBytes { get; init; }

    /// <summary><c>-S</c>: stay in <c>prelaunch</c> instead of starting the VM.</summary>
    public bool StartPaused { get; init; }

    /// <summary><c>-nodefaults</c>: create no default devices.</summary>
    public bool NoDefaults { get; init; }

    /// <summary><c>-display</c>: the display type; only <c>none</c> exists.</summary>
    public string Display { get; init; } = "none";

    /// <summary><c>-name</c>: the guest's name.</summary>
    public string? Name { get; init; }

    /// <summary><c>-pidfile</c>: where to write the process id.</summary>
    public string? PidFile { get; init; }

    /// <summary><c>-qmp</c>: the QMP sockets to listen on.</summary>
    public IReadOnlyList<QmpSocketOptions> QmpSockets { get; init; } = [];

    /// <summary><c>-incoming</c>: the URI to load an incoming migration from, or <c>defer</c>; null without it.</summary>
    public string? Incoming { get; init; }

    /// <summary><c>-object memory-backend-memfd,...</c>: memory backends, in command-line order.</summary>
    public IReadOnlyList<MemoryBackendSpec> MemoryBackends { get; init; } = [];

    /// <summary>The backend <c>-machine memory-backend=ID</c> made guest RAM; null for plain <c>-m</c> RAM.</summary>
    public MemoryBackendSpec? MemoryBackend { get; init; }

    /// <summary><c>-mem-prealloc</c>: allocate all guest RAM at start-up.</summary>
    public bool MemPrealloc { get; init; }

    /// <summary>
    /// <c>-machine x-incoming-prefault=on|off</c> (default on): with <c>-incoming</c>, allocate
    /// guest RAM in the background while waiting for the stream.
    /// </summary>
    public bool IncomingPrefault =>
        !Machine.Properties.TryGetValue("x-incoming-prefault", out string? value)
        || QemuOptionList.ParseBoolean("-machine", "x-incoming-prefault=" + value, "x-incoming-prefault", value);

    /// <summary><c>-object tls-creds-x509,...</c>: TLS credentials, in command-line order.</summary>
    public IReadOnlyList<TlsCredentialsSpec> Objects { get; init; } = [];

    /// <summary><c>-device</c>: the devices, in command-line order.</summary>
    public IReadOnlyList<DeviceSpec> Devices { get; init; } = [];

    /// <summary><c>-guest dirty[,rate=N]</c>: the built-in dirtying guest's page rate (0 = as fast as it can); null without it.</summary>
    public long? DirtyGuestRate => Guest.DirtyRate;

    /// <summary><c>-guest</c>: the built-in guest or the external harness; <see cref="GuestSelection.None"/> without it.</summary>
    public GuestSelection Guest { get; init; } = GuestSelection.None;

    /// <summary><c>-guest harness,socket=PATH[,pause-timeout=MS][,connect-timeout=MS]</c>; null without it.</summary>
    public MiniVmm.GuestHarness.HarnessGuestOptions? Harness => Guest.Harness;
}
