namespace MiniVmm.GuestHarness.Connection;

/// <summary>
/// The guest harness failed, refused, timed out or went away. The message names the harness
/// (its process id and socket) and the request.
/// </summary>
public sealed class GuestHarnessException : IOException
{
    /// <summary>Creates the error.</summary>
    public GuestHarnessException(string message, Exception? inner = null) : base(message, inner)
    {
    }

    /// <summary>The negative errno the harness replied with, when it refused a request.</summary>
    public long? Status { get; init; }
}
