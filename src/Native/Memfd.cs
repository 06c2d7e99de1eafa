namespace MiniVmm.Native;

/// <summary>Anonymous memory-backed files (memfd_create(2)).</summary>
public static class Memfd
{
    /// <summary>Creates an empty memfd; give it a size with <see cref="FileDescriptorHandle.Truncate"/>.</summary>
    /// <param name="name">A name for debugging, shown in /proc/self/fd (at most 249 bytes).</param>
    /// <param name="flags">memfd_create flags.</param>
    public static FileDescriptorHandle Create(string name, MemfdFlags flags = MemfdFlags.CloseOnExec)
    {
        ArgumentNullException.ThrowIfNull(name);
        return LibC.memfd_create(name, (uint)flags).ValidOrThrow("memfd_create", $"\"{name}\"");
    }
}
