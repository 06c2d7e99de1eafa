using System.Runtime.CompilerServices;

namespace MiniVmm.Runstate;

/// <summary>
/// The VM's big lock, QEMU's BQL ("iothread lock"): one per VM. QMP commands, run-state
/// changes, VM change-state handlers and the switchover phase of a migration run with it held.
/// It is not recursive: taking it twice on one thread is a bug and throws.
/// </summary>
public sealed class BigLock
{
    private readonly Lock _lock = new();

    /// <summary>Whether the current thread holds the lock.</summary>
    public bool IsHeld => _lock.IsHeldByCurrentThread;

    /// <summary>Takes the lock, waiting as long as needed; dispose the scope to release it.</summary>
    /// <exception cref="LockRecursionException">The current thread already holds it.</exception>
    public Scope Acquire()
    {
        ThrowIfHeld();
        _lock.Enter();
        return new Scope(this);
    }

    /// <summary>Takes the lock if it can within <paramref name="timeout"/>.</summary>
    public bool TryAcquire(TimeSpan timeout, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Scope? scope)
    {
        ThrowIfHeld();
        scope = _lock.TryEnter(timeout) ? new Scope(this) : null;
        return scope is not null;
    }

    /// <summary>
    /// Releases the lock, held by the current thread, until the returned scope is disposed
    /// (QEMU's pattern of dropping the BQL around a blocking wait).
    /// </summary>
    public Release ReleaseTemporarily([CallerMemberName] string? caller = null)
    {
        AssertHeld(caller);
        _lock.Exit();
        return new Release(this);
    }

    /// <summary>Throws <see cref="BigLockAssertionException"/> unless the current thread holds the lock.</summary>
    public void AssertHeld([CallerMemberName] string? caller = null)
    {
        if (!IsHeld)
        {
            throw new BigLockAssertionException($"{caller ?? "this code"} must run with the big lock held");
        }
    }

    /// <summary>Throws <see cref="BigLockAssertionException"/> if the current thread holds the lock.</summary>
    public void AssertNotHeld([CallerMemberName] string? caller = null)
    {
        if (IsHeld)
        {
            throw new BigLockAssertionException($"{caller ?? "this code"} must run without the big lock");
        }
    }

    private void ThrowIfHeld()
    {
        if (IsHeld)
        {
            throw new LockRecursionException("the big lock is already held by this thread");
        }
    }

    /// <summary>A held lock; disposing releases it (once).</summary>
    public sealed class Scope : IDisposable
    {
        private BigLock? _owner;

        internal Scope(BigLock owner) => _owner = owner;

        /// <summary>Releases the lock; later calls do nothing.</summary>
        public void Dispose() => Interlocked.Exchange(ref _owner, null)?._lock.Exit();
    }

    /// <summary>A temporarily released lock; disposing takes it again (once).</summary>
    public sealed class Release : IDisposable
    {
        private BigLock? _owner;

        internal Release(BigLock owner) => _owner = owner;

        /// <summary>Takes the lock again; later calls do nothing.</summary>
        public void Dispose() => Interlocked.Exchange(ref _owner, null)?._lock.Enter();
    }
}
