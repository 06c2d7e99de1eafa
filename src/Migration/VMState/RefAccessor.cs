namespace MiniVmm.Migration.VMState;

/// <summary>
/// Gives a reference to one value stored in a device's state object, so a field can be both
/// read (on save) and assigned (on load): <c>s =&gt; ref s.CpuTicksOffset</c>.
/// </summary>
/// <typeparam name="T">The device's state type.</typeparam>
/// <typeparam name="TValue">The type of the value.</typeparam>
public delegate ref TValue RefAccessor<in T, TValue>(T state);
