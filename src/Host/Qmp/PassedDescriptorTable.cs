using MiniVmm.Native;

namespace MiniVmm.Host.Qmp;

/// <summary>
/// The file descriptors QMP clients handed over with <c>getfd</c>, by name, for the whole VM:
/// <c>closefd</c> closes one, and an <c>fd:NAME</c> migration takes one out (QEMU consumes it).
/// Disposing closes every descriptor still held.
/// </summary>
public sealed class PassedDescriptorTable : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, FileDescriptorHandle> _descriptors = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>The names currently held, in no particular order.</summary>
    public IReadOnlyList<string> Names
    {
        get
        {
            lock (_gate)
            {
                return [.. _descriptors.Keys];
            }
        }
    }

    /// <summary>
    /// Stores <paramref name="descriptor"/> as <paramref name="name"/>, which now owns it; a
    /// descriptor stored earlier under the same name is closed, as QEMU does.
    /// </summary>
    public void Add(string name, FileDescriptorHandle descriptor)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(descriptor);
        FileDescriptorHandle? replaced;
        lock (_gate)
        {
            if (_disposed)
            {
                descriptor.Dispose();
                throw new ObjectDisposedException(nameof(PassedDescriptorTable));
            }

            _descriptors.Remove(name, out replaced);
            _descriptors[name] = descriptor;
        }

        replaced?.Dispose();
    }

    /// <summary>Closes the descriptor named <paramref name="name"/>; false when there is none.</summary>
    public bool Close(string name)
    {
        FileDescriptorHandle? descriptor = Take(name);
        descriptor?.Dispose();
        return descriptor is not null;
    }

    /// <summary>Removes the descriptor named <paramref name="name"/> and hands it to the caller; null when there is none.</summary>
    public FileDescriptorHandle? Take(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (_gate)
        {
            return _descriptors.Remove(name, out FileDescriptorHandle? descriptor) ? descriptor : null;
        }
    }

    /// <summary>
    /// The <c>fd:NAME</c> migration transport: takes the descriptor out of the table and wraps it
    /// in a blocking stream that reads and writes it and closes it when disposed.
    /// </summary>
    /// <exception cref="IOException">No descriptor has that name (QEMU's message).</exception>
    public Stream TakeStream(string name)
    {
        FileDescriptorHandle descriptor = Take(name)
            ?? throw new IOException($"File descriptor named '{name}' has not been found");
        try
        {
            descriptor.NonBlocking = false;
            return new FileDescriptorStream(descriptor, FileAccess.ReadWrite);
        }
        catch
        {
            descriptor.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        List<FileDescriptorHandle> remaining;
        lock (_gate)
        {
            _disposed = true;
            remaining = [.. _descriptors.Values];
            _descriptors.Clear();
        }

        remaining.ForEach(descriptor => descriptor.Dispose());
    }
}
