namespace MiniVmm.Migration.Ram;

/// <summary>A guest physical address range that is not (entirely) guest RAM, or a file that does not fit.</summary>
public sealed class GuestMemoryRangeException : Exception
{
    /// <summary>Creates the exception for the range [<paramref name="address"/>, +<paramref name="length"/>).</summary>
    public GuestMemoryRangeException(string message, long address, long length)
        : base(message)
    {
        Address = address;
        Length = length;
    }

    /// <summary>First guest physical address of the range.</summary>
    public long Address { get; }

    /// <summary>Length of the range in bytes.</summary>
    public long Length { get; }
}
