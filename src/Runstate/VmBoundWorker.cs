namespace MiniVmm.Runstate;

/// <summary>
/// A thread that does work only while its VM runs, as a vCPU does: it calls
/// <see cref="_step"/> again and again while the VM is running and parks while it is stopped.
/// A VM stop returns only once the thread is parked (the stop's change-state handler waits for
/// it), so nothing the step writes changes during a switchover, a snapshot or a load. Disposing
/// ends the thread and unregisters the handler.
/// </summary>
public sealed class VmBoundWorker : IDisposable
{
    private readonly object _gate = new();
    private readonly Action _step;
    private readonly Action? _resumed;
    private readonly Thread _thread;
    private readonly IDisposable _registration;
    private bool _run;
    private bool _parked;
    private bool _disposed;

    /// <summary>Starts the thread <paramref name="name"/>, parked until <paramref name="vm"/> runs.</summary>
    /// <param name="vm">The VM whose run state the worker follows.</param>
    /// <param name="name">The thread's and the change-state handler's name.</param>
    /// <param name="step">One batch of work; called on the worker thread, no lock held.</param>
    /// <param name="resumed">Called on the worker thread each time it leaves the parked state (e.g. to restart pacing).</param>
    public VmBoundWorker(VirtualMachine vm, string name, Action step, Action? resumed = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        _step = step ?? throw new ArgumentNullException(nameof(step));
        _resumed = resumed;
        _thread = new Thread(Run) { Name = name, IsBackground = true };
        _thread.Start();
        _registration = vm.StateChangeHandlers.Register(OnRunStateChange, priority: 0, name: name);
        if (vm.IsRunning)
        {
            OnRunStateChange(true, vm.State);
        }
    }

    /// <summary>Ends the thread (after its current step) and unregisters; later calls do nothing.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Monitor.PulseAll(_gate);
        }

        _thread.Join();
        _registration.Dispose();
    }

    /// <summary>The VM change-state handler: big lock held; a stop returns once the thread is parked.</summary>
    private void OnRunStateChange(bool running, RunState state)
    {
        lock (_gate)
        {
            _run = running;
            Monitor.PulseAll(_gate);
            while (!running && !_parked && !_disposed)
            {
                Monitor.Wait(_gate);
            }
        }
    }

    private void Run()
    {
        while (true)
        {
            bool wasParked = false;
            lock (_gate)
            {
                while (!_run && !_disposed)
                {
                    _parked = true;
                    wasParked = true;
                    Monitor.PulseAll(_gate);
                    Monitor.Wait(_gate);
                }

                if (_disposed)
                {
                    _parked = true;
                    Monitor.PulseAll(_gate);
                    return;
                }

                _parked = false;
            }

            if (wasParked)
            {
                _resumed?.Invoke();
            }

            _step();
        }
    }
}
