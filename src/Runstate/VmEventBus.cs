using System.Collections.Immutable;
using System.Text.Json.Nodes;

namespace MiniVmm.Runstate;

/// <summary>
/// Delivers <see cref="VmEvent"/>s to subscribers (the QMP server, tests). Subscribers are
/// called synchronously on the emitting thread, which may hold the big lock: they must only
/// queue the event, never block. A subscriber that throws does not stop the others.
/// </summary>
public sealed class VmEventBus(TimeProvider time)
{
    private ImmutableArray<Action<VmEvent>> _subscribers = [];

    /// <summary>Calls <paramref name="handler"/> for every later event until the result is disposed.</summary>
    public IDisposable Subscribe(Action<VmEvent> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ImmutableInterlocked.Update(ref _subscribers, list => list.Add(handler));
        return new Subscription(this, handler);
    }

    /// <summary>Stamps an event with the current time and delivers it.</summary>
    public VmEvent Emit(string name, JsonObject? data = null)
    {
        var vmEvent = new VmEvent(name, data, time.GetUtcNow());
        foreach (Action<VmEvent> subscriber in _subscribers)
        {
            try
            {
                subscriber(vmEvent);
            }
            catch (Exception)
            {
                // A broken subscriber must not take the VM down or starve the other subscribers.
            }
        }

        return vmEvent;
    }

    private sealed class Subscription(VmEventBus bus, Action<VmEvent> handler) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                ImmutableInterlocked.Update(ref bus._subscribers, list => list.Remove(handler));
            }
        }
    }
}
