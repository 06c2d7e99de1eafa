namespace MiniVmm.Runstate.Tests;

/// <summary>A clock stopped at one instant, so event timestamps can be compared exactly.</summary>
internal sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>Collects what happened, in order, from handlers and event subscribers.</summary>
internal sealed class CallRecorder
{
    private readonly List<string> _calls = [];

    public IReadOnlyList<string> Calls => _calls;

    public void Add(string call) => _calls.Add(call);

    public void Clear() => _calls.Clear();

    /// <summary>A change-state callback recording "<paramref name="label"/>(running, state)".</summary>
    public VmStateChangeCallback Callback(string label) =>
        (running, state) => Add($"{label}({running}, {state.ToQapiName()})");

    /// <summary>A change-state callback recording just "<paramref name="label"/>".</summary>
    public VmStateChangeCallback Mark(string label) => (_, _) => Add(label);

    /// <summary>Records every event of <paramref name="bus"/> as "event NAME".</summary>
    public IDisposable RecordEvents(VmEventBus bus) => bus.Subscribe(e => Add($"event {e.Name}"));
}

internal static class VmTestExtensions
{
    /// <summary>Runs <paramref name="action"/> with the VM's big lock held.</summary>
    public static T Locked<T>(this VirtualMachine vm, Func<VirtualMachine, T> action)
    {
        using BigLock.Scope scope = vm.Bql.Acquire();
        return action(vm);
    }

    /// <summary>Runs <paramref name="action"/> with the VM's big lock held.</summary>
    public static void Locked(this VirtualMachine vm, Action<VirtualMachine> action)
    {
        using BigLock.Scope scope = vm.Bql.Acquire();
        action(vm);
    }
}
