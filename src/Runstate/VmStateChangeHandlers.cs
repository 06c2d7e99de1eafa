using System.Collections.Immutable;

namespace MiniVmm.Runstate;

/// <summary>
/// The VM change-state handler list (QEMU's <c>vm_change_state_head</c>), kept sorted by
/// ascending priority; equal priorities keep registration order. Notification order is QEMU's
/// since 8.2: when the VM starts, every prepare callback in list order, then every callback in
/// list order; when it stops, every prepare callback in reverse order, then every callback in
/// reverse order. So parents (low priority, e.g. a shallow qdev depth) start first and stop
/// last, and every device can be quiesced (prepare) before any device changes state.
/// </summary>
public sealed class VmStateChangeHandlers
{
    private readonly object _gate = new();
    private ImmutableList<Entry> _entries = [];
    private long _nextSequence;

    /// <summary>How many handlers are registered.</summary>
    public int Count => _entries.Count;

    /// <summary>
    /// Registers a handler (QEMU's <c>qemu_add_vm_change_state_handler_prio_full</c>).
    /// Dispose the result to unregister it (<c>qemu_del_vm_change_state_handler</c>).
    /// </summary>
    /// <param name="callback">The main callback.</param>
    /// <param name="priority">Lower runs earlier on start and later on stop.</param>
    /// <param name="prepare">An optional callback run in the prepare pass.</param>
    /// <param name="name">The name failures are reported under.</param>
    public IDisposable Register(
        VmStateChangeCallback callback, int priority = 0, VmStateChangeCallback? prepare = null, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(callback);
        lock (_gate)
        {
            var entry = new Entry(callback, prepare, priority, name ?? $"handler #{_nextSequence}", _nextSequence++);
            int index = _entries.FindIndex(e => e.Priority > priority);
            _entries = index < 0 ? _entries.Add(entry) : _entries.Insert(index, entry);
            return new Registration(this, entry);
        }
    }

    /// <summary>
    /// Runs the handlers for a state change (QEMU's <c>vm_state_notify</c>): the prepare pass,
    /// then the main pass, in the order described on the class. Every handler runs; failures
    /// are collected and returned. The caller holds the big lock.
    /// </summary>
    public IReadOnlyList<VmStateChangeFailure> Notify(bool running, RunState state)
    {
        ImmutableList<Entry> snapshot = _entries;
        IEnumerable<Entry> order = running ? snapshot : snapshot.Reverse();
        List<VmStateChangeFailure>? failures = null;

        foreach (Entry entry in order)
        {
            if (entry.Prepare is { } prepare)
            {
                Invoke(entry, prepare, VmStateChangePhase.Prepare);
            }
        }

        foreach (Entry entry in order)
        {
            Invoke(entry, entry.Callback, VmStateChangePhase.Change);
        }

        return failures ?? (IReadOnlyList<VmStateChangeFailure>)[];

        void Invoke(Entry entry, VmStateChangeCallback callback, VmStateChangePhase phase)
        {
            try
            {
                callback(running, state);
            }
            catch (Exception error)
            {
                (failures ??= []).Add(new VmStateChangeFailure(entry.Name, phase, error));
            }
        }
    }

    private void Remove(Entry entry)
    {
        lock (_gate)
        {
            _entries = _entries.Remove(entry);
        }
    }

    private sealed record Entry(
        VmStateChangeCallback Callback, VmStateChangeCallback? Prepare, int Priority, string Name, long Sequence);

    private sealed class Registration(VmStateChangeHandlers owner, Entry entry) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Remove(entry);
            }
        }
    }
}
