using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Ram;

/// <summary>
/// A RAM section body the destination refuses. The message is QEMU 7.2's wording for the same
/// case (several of QEMU's lines joined with "; "), e.g. <c>Illegal RAM offset 8000000</c>.
/// </summary>
public sealed class RamLoadException : MigrationStreamException
{
    /// <summary>Creates the exception for the record at stream offset <paramref name="offset"/>.</summary>
    public RamLoadException(string message, long offset)
        : base(message, offset)
    {
    }
}
