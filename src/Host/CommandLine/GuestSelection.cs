using MiniVmm.GuestHarness;

namespace MiniVmm.Host.CommandLine;

/// <summary>What <c>-guest</c> asked for: the built-in dirtying guest or an external guest harness.</summary>
/// <param name="DirtyRate"><c>-guest dirty[,rate=N]</c>: the page rate (0 = as fast as it can); null for another guest.</param>
/// <param name="Harness"><c>-guest harness,socket=PATH,...</c>: where to listen for the harness; null for another guest.</param>
public sealed record GuestSelection(long? DirtyRate, HarnessGuestOptions? Harness)
{
    /// <summary>No <c>-guest</c>: nothing writes guest RAM but migrations and QMP.</summary>
    public static GuestSelection None { get; } = new(null, null);
}
