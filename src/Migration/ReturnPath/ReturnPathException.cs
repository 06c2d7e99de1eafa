using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.ReturnPath;

/// <summary>
/// The return path failed: a malformed or unexpected message, the destination reporting a
/// failure in its SHUT, or the channel closing before the SHUT. The offset is counted in the
/// return-path byte stream (destination → source), not in the migration stream.
/// </summary>
public sealed class ReturnPathException : MigrationStreamException
{
    /// <summary>Creates the exception; <paramref name="offset"/> is where in the return-path bytes the failure is.</summary>
    public ReturnPathException(string message, long offset, Exception? inner = null)
        : base(message, offset, inner, offset < 0 ? $"return path: {message}" : $"return path: {message} at return-path offset {offset}")
    {
    }
}
