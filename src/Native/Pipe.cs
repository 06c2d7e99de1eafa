namespace MiniVmm.Native;

/// <summary>Unidirectional kernel pipes (pipe2(2)).</summary>
public static class Pipe
{
    /// <summary>The FIONREAD ioctl request: how many bytes are queued for reading.</summary>
    public const ulong FIONREAD = 0x541B;

    /// <summary>Creates a pipe with <paramref name="flags"/> applied to both ends.</summary>
    public static unsafe PipeEnds Create(PipeFlags flags = PipeFlags.CloseOnExec)
    {
        int* fds = stackalloc int[2];
        if (LibC.pipe2(fds, (int)flags) < 0)
        {
            throw NativeCallException.FromLastError("pipe2", $"0x{(int)flags:X}");
        }
        return new PipeEnds(FileDescriptorHandle.FromOwned(fds[0]), FileDescriptorHandle.FromOwned(fds[1]));
    }

    /// <summary>How many bytes are queued in the pipe that <paramref name="end"/> belongs to (FIONREAD).</summary>
    public static unsafe int QueuedBytes(FileDescriptorHandle end)
    {
        ArgumentNullException.ThrowIfNull(end);
        int count;
        end.Ioctl(FIONREAD, &count);
        return count;
    }
}
