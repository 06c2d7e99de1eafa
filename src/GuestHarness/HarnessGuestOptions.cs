namespace MiniVmm.GuestHarness;

/// <summary>
/// <c>-guest harness,socket=PATH[,pause-timeout=MS][,connect-timeout=MS]</c>: where MiniVmm
/// listens for its guest harness, and how long it waits for one.
/// </summary>
/// <param name="SocketPath">The UNIX socket MiniVmm creates (mode 0600) and the harness connects to.</param>
/// <param name="PauseTimeout">How long PAUSE (and every other request) may take before the stop, or the request, fails.</param>
/// <param name="ConnectTimeout">How long a start, or an incoming harness state, waits for a harness to connect.</param>
public sealed record HarnessGuestOptions(string SocketPath, TimeSpan PauseTimeout, TimeSpan ConnectTimeout)
{
    /// <summary>The default <see cref="PauseTimeout"/>: 2 s.</summary>
    public static readonly TimeSpan DefaultPauseTimeout = TimeSpan.FromMilliseconds(2000);

    /// <summary>The default <see cref="ConnectTimeout"/>: 10 s.</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromMilliseconds(10000);
}
