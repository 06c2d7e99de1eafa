namespace MiniVmm.Migration.VMState;

/// <summary>
/// Gives the storage of an array or buffer held by a device's state object:
/// <c>s =&gt; s.Registers</c> (an array converts to a span implicitly). The span's length is
/// the storage's capacity.
/// </summary>
/// <typeparam name="T">The device's state type.</typeparam>
/// <typeparam name="TElement">The element type.</typeparam>
public delegate Span<TElement> SpanAccessor<in T, TElement>(T state);
