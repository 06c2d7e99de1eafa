using MiniVmm.Native;

namespace MiniVmm.Host.Qmp;

/// <summary>
/// The protocol state of one QMP client: whether capabilities negotiation is complete (until it
/// is, only <c>qmp_capabilities</c> is accepted and no event is sent), and the file descriptors
/// the client passed with SCM_RIGHTS that no command has taken yet.
/// </summary>
/// <remarks>
/// As QEMU's socket chardev does, only the most recently received batch of descriptors is kept:
/// a new batch closes the untaken ones before it, and taking one (<c>getfd</c>) closes the rest
/// of its batch.
/// </remarks>
public sealed class QmpSession
{
    private readonly Lock _gate = new();
    private readonly List<FileDescriptorHandle> _received = [];
    private volatile bool _negotiated;
    private bool _closed;

    /// <summary>Whether <c>qmp_capabilities</c> has succeeded on this session.</summary>
    public bool IsNegotiated => _negotiated;

    /// <summary>How many received descriptors wait to be taken.</summary>
    public int ReceivedDescriptorCount
    {
        get
        {
            lock (_gate)
            {
                return _received.Count;
            }
        }
    }

    /// <summary>Leaves capabilities negotiation mode.</summary>
    public void CompleteNegotiation() => _negotiated = true;

    /// <summary>
    /// Keeps <paramref name="batch"/>, the descriptors that came with one read from the client,
    /// in place of any earlier ones not taken (those are closed). The session owns them from now on.
    /// </summary>
    public void AddReceivedDescriptors(IReadOnlyCollection<FileDescriptorHandle> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            return;
        }

        lock (_gate)
        {
            CloseReceived();
            _received.AddRange(batch);
            if (_closed)
            {
                CloseReceived();
            }
        }
    }

    /// <summary>
    /// Takes the first descriptor of the latest batch, closing the rest; null when the client
    /// passed none since the last one was taken. The caller owns the result.
    /// </summary>
    public FileDescriptorHandle? TakeReceivedDescriptor()
    {
        lock (_gate)
        {
            if (_received.Count == 0)
            {
                return null;
            }

            FileDescriptorHandle taken = _received[0];
            _received.RemoveAt(0);
            CloseReceived();
            return taken;
        }
    }

    /// <summary>Closes every descriptor not taken, and any received later: the client has gone.</summary>
    public void CloseReceivedDescriptors()
    {
        lock (_gate)
        {
            _closed = true;
            CloseReceived();
        }
    }

    private void CloseReceived()
    {
        foreach (FileDescriptorHandle descriptor in _received)
        {
            descriptor.Dispose();
        }

        _received.Clear();
    }
}
