namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// Runs cases one at a time on its own thread, so that a case that hangs is noticed: the
/// caller waits at most the case timeout. A worker whose case hung is abandoned (its thread is
/// a background thread) and a new one takes over.
/// </summary>
internal sealed class CaseWorker : IDisposable
{
    private readonly Thread _thread;
    private readonly SemaphoreSlim _work = new(0);
    private readonly ManualResetEventSlim _done = new(false);
    private Func<CaseOutcome>? _case;
    private CaseOutcome _outcome;
    private Exception? _error;
    private long _allocated;
    private volatile bool _stopping;

    public CaseWorker(string name)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>
    /// Runs <paramref name="work"/>; false when it did not finish within <paramref name="timeout"/>.
    /// <paramref name="allocated"/> is what the whole process allocated meanwhile (every thread,
    /// since targets run threads of their own).
    /// </summary>
    public bool TryRun(Func<CaseOutcome> work, TimeSpan timeout, out CaseOutcome outcome, out Exception? error, out long allocated)
    {
        _case = work;
        _error = null;
        _done.Reset();
        _work.Release();
        if (!_done.Wait(timeout))
        {
            outcome = default;
            error = null;
            allocated = 0;
            return false;
        }

        outcome = _outcome;
        error = _error;
        allocated = _allocated;
        return true;
    }

    public void Dispose()
    {
        _stopping = true;
        _work.Release();
    }

    private void Loop()
    {
        while (true)
        {
            _work.Wait();
            if (_stopping)
            {
                return;
            }

            long before = GC.GetTotalAllocatedBytes(precise: true);
            try
            {
                _outcome = _case!();
            }
            catch (Exception error)
            {
                _error = error;
            }

            _allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            _done.Set();
        }
    }
}
