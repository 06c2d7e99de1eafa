using System.Collections.Immutable;

namespace MiniVmm.Runstate;

/// <summary>The <see cref="VmStartCheck"/>s a VM asks before it starts, in registration order.</summary>
public sealed class VmStartChecks
{
    private ImmutableList<VmStartCheck> _checks = [];

    /// <summary>How many checks are registered.</summary>
    public int Count => _checks.Count;

    /// <summary>Adds a check; dispose the result to remove it.</summary>
    public IDisposable Register(VmStartCheck check)
    {
        ArgumentNullException.ThrowIfNull(check);
        ImmutableInterlocked.Update(ref _checks, list => list.Add(check));
        return new Registration(this, check);
    }

    /// <summary>The first refusal, or null when every check lets the VM start. Big lock held.</summary>
    public string? FirstRefusal()
    {
        foreach (VmStartCheck check in _checks)
        {
            if (check() is { } reason)
            {
                return reason;
            }
        }

        return null;
    }

    private sealed class Registration(VmStartChecks owner, VmStartCheck check) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                ImmutableInterlocked.Update(ref owner._checks, list => list.Remove(check));
            }
        }
    }
}
