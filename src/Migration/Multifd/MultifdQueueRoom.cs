namespace MiniVmm.Migration.Multifd;

/// <summary>
/// Where the migration thread waits when every send channel's queue is full, until a channel
/// thread takes a packet. The waits block in the kernel at once: the lock-free queues of the
/// runtime spin and yield before they sleep, and on a 2-core host those spins took CPU from the
/// channel threads and their sockets. A generation count closes the gap between finding every
/// queue full and going to sleep: a packet taken in between changes it, so the wait returns.
/// </summary>
internal sealed class MultifdQueueRoom
{
    private readonly object _gate = new();
    private long _generation;
    private bool _waiting;

    /// <summary>Changes each time a channel takes a packet. Read before looking for room. Any thread.</summary>
    public long Generation => Volatile.Read(ref _generation);

    /// <summary>A channel thread took a packet off its queue. Channel threads; takes the room's lock briefly.</summary>
    public void Freed()
    {
        lock (_gate)
        {
            _generation++;
            if (_waiting)
            {
                Monitor.Pulse(_gate);
            }
        }
    }

    /// <summary>Wakes the waiting thread for good reason other than room (a failure). Any thread.</summary>
    public void WakeAll()
    {
        lock (_gate)
        {
            _generation++;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Sleeps until <see cref="Generation"/> differs from <paramref name="seen"/> or
    /// <paramref name="cancel"/> is cancelled (whose registration must call <see cref="WakeAll"/>).
    /// Migration thread.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> was cancelled.</exception>
    public void WaitForRoom(long seen, CancellationToken cancel)
    {
        lock (_gate)
        {
            while (_generation == seen && !cancel.IsCancellationRequested)
            {
                _waiting = true;
                Monitor.Wait(_gate);
                _waiting = false;
            }
        }

        cancel.ThrowIfCancellationRequested();
    }
}
