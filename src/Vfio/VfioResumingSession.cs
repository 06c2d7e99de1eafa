using MiniVmm.Native;

namespace MiniVmm.Vfio;

/// <summary>
/// One resuming data session (STOP→RESUMING until RESUMING→STOP): a memfd that the user fills
/// with write(2) through the data fd; nothing blocks, however large the state. The device keeps
/// its own descriptor, so the data stays available even after the user closes the data fd.
/// </summary>
internal sealed class VfioResumingSession : IDisposable
{
    private readonly FileDescriptorHandle _file;

    /// <summary>Creates the empty memfd.</summary>
    public VfioResumingSession(string name)
    {
        _file = Memfd.Create($"{name} resuming");
    }

    /// <summary>A new descriptor for the memfd: the data fd handed to the user, who owns it.</summary>
    public FileDescriptorHandle OpenDataFd() => _file.Duplicate();

    /// <summary>How many bytes the user has written (the memfd's size).</summary>
    public long Length => _file.Size;

    /// <summary>Maps what was written, read-only; null when nothing was.</summary>
    public MemoryMapping? MapData()
    {
        long length = Length;
        return length == 0 ? null : MemoryMapping.Map(_file, 0, length, MemoryProtection.Read, MappingFlags.Shared);
    }

    /// <summary>Releases the device's descriptor.</summary>
    public void Dispose() => _file.Dispose();
}
