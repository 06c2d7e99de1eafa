namespace MiniVmm.Migration.ReturnPath;

/// <summary>
/// The return path failed: a malformed or unexpected message, the destination reporting a
/// failure in its SHUT, the channel closing before the SHUT, or a message that could not be
/// sent. <see cref="Offset"/> counts bytes of the return-path stream (destination → source),
/// not of the migration stream, which is why this is not a <c>MigrationStreamException</c>.
/// </summary>
public sealed class ReturnPathException : Exception
{
    /// <summary>Creates the exception; <paramref name="offset"/> is where in the return-path bytes the failure is.</summary>
    public ReturnPathException(string message, long offset, Exception? inner = null)
        : base(offset < 0 ? $"return path: {message}" : $"return path: {message} at return-path offset {offset}", inner)
    {
        Offset = offset < 0 ? -1 : offset;
    }

    /// <summary>The return-path byte offset of the failure, or −1 when not known.</summary>
    public long Offset { get; }
}
