namespace MiniVmm.Migration.Ram;

/// <summary>
/// Guest RAM cannot be provided or allocated: no huge pages reserved, a size that does not fit
/// the huge page size, or the host out of memory while preallocating. The message names the
/// block and, where it applies, the offset.
/// </summary>
public sealed class RamBackingException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RamBackingException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
