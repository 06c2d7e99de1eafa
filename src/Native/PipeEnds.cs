namespace MiniVmm.Native;

/// <summary>The two ends of a pipe; disposing closes both.</summary>
/// <param name="Read">The end to read from.</param>
/// <param name="Write">The end to write to.</param>
public sealed record PipeEnds(FileDescriptorHandle Read, FileDescriptorHandle Write) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        Read.Dispose();
        Write.Dispose();
    }
}
