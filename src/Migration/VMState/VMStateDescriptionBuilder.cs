using System.Text;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// Collects the fields, hooks and subsections of a <see cref="VMStateDescription{T}"/>, in
/// stream order; <see cref="Done"/> checks them and returns the immutable description.
/// </summary>
/// <remarks>
/// Every field method takes an optional <c>sinceVersion</c> (the first version containing
/// the field; QEMU's field version_id) and an optional <c>exists</c> predicate which, when
/// given, alone decides whether the field is in the stream for a version (QEMU's
/// field_exists). Counts and sizes named by <c>count</c>/<c>size</c> are the values of
/// earlier fields: on load those fields have already been read from the stream, and the
/// value is checked against the storage's capacity before it is used.
/// </remarks>
/// <typeparam name="T">The device's state type.</typeparam>
public sealed class VMStateDescriptionBuilder<T>
    where T : class
{
    private const int MaxSubsectionNameBytes = 255;

    private readonly string _name;
    private readonly int _version;
    private readonly int _minimumVersion;
    private readonly List<VMStateField<T>> _fields = [];
    private readonly List<VMStateSubsection<T>> _subsections = [];
    private MigrationPriority _priority = MigrationPriority.Default;
    private bool _unmigratable;
    private bool _earlySetup;
    private Func<T, bool>? _needed;
    private Action<T>? _preSave;
    private Action<T>? _postSave;
    private Action<T>? _preLoad;
    private Action<T, int>? _postLoad;

    internal VMStateDescriptionBuilder(string name, int version, int minimumVersion)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfNegative(minimumVersion);
        ArgumentOutOfRangeException.ThrowIfLessThan(version, minimumVersion);
        _name = name;
        _version = version;
        _minimumVersion = minimumVersion;
    }

    /// <summary>A bool, one byte 0/1 (any non-zero byte loads as true).</summary>
    public VMStateDescriptionBuilder<T> Bool(string name, RefAccessor<T, bool> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarField<T, bool>(name, value, ScalarEncodings.Bool, sinceVersion, exists));

    /// <summary>A signed 8-bit integer, one byte.</summary>
    public VMStateDescriptionBuilder<T> Int8(string name, RefAccessor<T, sbyte> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarField<T, sbyte>(name, value, ScalarEncodings.Int8, sinceVersion, exists));

    /// <summary>A signed 16-bit integer, big-endian.</summary>
    public VMStateDescriptionBuilder<T> Int16(string name, RefAccessor<T, short> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarField<T, short>(name, value, ScalarEncodings.Int16, sinceVersion, exists));

    /// <summary>A signed 32-bit integer, big-endian.</summary>
    public VMStateDescriptionBuilder<T> Int32(string name, RefAccessor<T, int> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarField<T, int>(name, value, ScalarEncodings.Int32, sinceVersion, exists));

    /// <summary>A signed 64-bit integer, big-endian.</summary>
    public VMStateDescriptionBuilder<T> Int64(string name, RefAccessor<T, long> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarField<T, long>(name, value, ScalarEncodings.Int64, sinceVersion, exists));

    /// <summary>An unsigned 8-bit integer, one byte.</summary>
    public VMStateDescriptionBuilder<T> UInt8(string name, RefAccessor<T, byte> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarField<T, byte>(name, value, ScalarEncodings.UInt8, sinceVersion, exists));

    /// <summary>An unsigned 16-bit integer, big-endian.</summary>
    public VMStateDescriptionBuilder<T> UInt16(string name, RefAccessor<T, ushort> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarField<T, ushort>(name, value, ScalarEncodings.UInt16, sinceVersion, exists));

    /// <summary>An unsigned 32-bit integer, big-endian.</summary>
    public VMStateDescriptionBuilder<T> UInt32(string name, RefAccessor<T, uint> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarField<T, uint>(name, value, ScalarEncodings.UInt32, sinceVersion, exists));

    /// <summary>An unsigned 64-bit integer, big-endian.</summary>
    public VMStateDescriptionBuilder<T> UInt64(string name, RefAccessor<T, ulong> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarField<T, ulong>(name, value, ScalarEncodings.UInt64, sinceVersion, exists));

    /// <summary>A signed 32-bit integer the incoming stream must match (type "int32 equal").</summary>
    public VMStateDescriptionBuilder<T> Int32Equal(string name, RefAccessor<T, int> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new EqualScalarField<T, int>(name, value, ScalarEncodings.Int32, sinceVersion, exists));

    /// <summary>An unsigned 8-bit integer the incoming stream must match (type "uint8 equal").</summary>
    public VMStateDescriptionBuilder<T> UInt8Equal(string name, RefAccessor<T, byte> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new EqualScalarField<T, byte>(name, value, ScalarEncodings.UInt8, sinceVersion, exists));

    /// <summary>An unsigned 16-bit integer the incoming stream must match (type "uint16 equal").</summary>
    public VMStateDescriptionBuilder<T> UInt16Equal(string name, RefAccessor<T, ushort> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new EqualScalarField<T, ushort>(name, value, ScalarEncodings.UInt16, sinceVersion, exists));

    /// <summary>An unsigned 32-bit integer the incoming stream must match (type "uint32 equal").</summary>
    public VMStateDescriptionBuilder<T> UInt32Equal(string name, RefAccessor<T, uint> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new EqualScalarField<T, uint>(name, value, ScalarEncodings.UInt32, sinceVersion, exists));

    /// <summary>An unsigned 64-bit integer the incoming stream must match (type "uint64 equal").</summary>
    public VMStateDescriptionBuilder<T> UInt64Equal(string name, RefAccessor<T, ulong> value, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new EqualScalarField<T, ulong>(name, value, ScalarEncodings.UInt64, sinceVersion, exists));

    /// <summary>
    /// An array of bools: all of <paramref name="elements"/>, or the first
    /// <paramref name="count"/> (the value of an earlier field, at most the capacity).
    /// </summary>
    public VMStateDescriptionBuilder<T> BoolArray(string name, SpanAccessor<T, bool> elements, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarArrayField<T, bool>(name, elements, ScalarEncodings.Bool, count, sinceVersion, exists));

    /// <summary>An array of signed 8-bit integers (whole, or the first <paramref name="count"/>).</summary>
    public VMStateDescriptionBuilder<T> Int8Array(string name, SpanAccessor<T, sbyte> elements, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarArrayField<T, sbyte>(name, elements, ScalarEncodings.Int8, count, sinceVersion, exists));

    /// <summary>An array of signed 16-bit integers (whole, or the first <paramref name="count"/>).</summary>
    public VMStateDescriptionBuilder<T> Int16Array(string name, SpanAccessor<T, short> elements, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarArrayField<T, short>(name, elements, ScalarEncodings.Int16, count, sinceVersion, exists));

    /// <summary>An array of signed 32-bit integers (whole, or the first <paramref name="count"/>).</summary>
    public VMStateDescriptionBuilder<T> Int32Array(string name, SpanAccessor<T, int> elements, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarArrayField<T, int>(name, elements, ScalarEncodings.Int32, count, sinceVersion, exists));

    /// <summary>An array of signed 64-bit integers (whole, or the first <paramref name="count"/>).</summary>
    public VMStateDescriptionBuilder<T> Int64Array(string name, SpanAccessor<T, long> elements, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarArrayField<T, long>(name, elements, ScalarEncodings.Int64, count, sinceVersion, exists));

    /// <summary>An array of unsigned 8-bit integers (whole, or the first <paramref name="count"/>).</summary>
    public VMStateDescriptionBuilder<T> UInt8Array(string name, SpanAccessor<T, byte> elements, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarArrayField<T, byte>(name, elements, ScalarEncodings.UInt8, count, sinceVersion, exists));

    /// <summary>An array of unsigned 16-bit integers (whole, or the first <paramref name="count"/>).</summary>
    public VMStateDescriptionBuilder<T> UInt16Array(string name, SpanAccessor<T, ushort> elements, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarArrayField<T, ushort>(name, elements, ScalarEncodings.UInt16, count, sinceVersion, exists));

    /// <summary>An array of unsigned 32-bit integers (whole, or the first <paramref name="count"/>).</summary>
    public VMStateDescriptionBuilder<T> UInt32Array(string name, SpanAccessor<T, uint> elements, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarArrayField<T, uint>(name, elements, ScalarEncodings.UInt32, count, sinceVersion, exists));

    /// <summary>An array of unsigned 64-bit integers (whole, or the first <paramref name="count"/>).</summary>
    public VMStateDescriptionBuilder<T> UInt64Array(string name, SpanAccessor<T, ulong> elements, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new ScalarArrayField<T, ulong>(name, elements, ScalarEncodings.UInt64, count, sinceVersion, exists));

    /// <summary>A fixed-size byte buffer written raw; its size is the length of <paramref name="bytes"/>.</summary>
    public VMStateDescriptionBuilder<T> Buffer(string name, SpanAccessor<T, byte> bytes, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new BufferField<T>(name, bytes, sinceVersion, exists));

    /// <summary>
    /// A byte buffer of <paramref name="size"/> bytes (the value of an earlier field) taken
    /// from the start of <paramref name="storage"/>, whose length is the capacity.
    /// </summary>
    public VMStateDescriptionBuilder<T> VariableBuffer(string name, SpanAccessor<T, byte> storage, Func<T, long> size, int sinceVersion = 0, Func<T, int, bool>? exists = null) =>
        Add(new VariableBufferField<T>(name, storage, size, sinceVersion, exists));

    /// <summary><paramref name="size"/> bytes no longer used: zeros are written, incoming bytes are skipped.</summary>
    public VMStateDescriptionBuilder<T> Unused(int size, int sinceVersion = 0) =>
        Add(new UnusedField<T>(size, sinceVersion));

    /// <summary>A nested object saved with <paramref name="description"/> at that description's own version.</summary>
    public VMStateDescriptionBuilder<T> Struct<TChild>(string name, Func<T, TChild> child, VMStateDescription<TChild> description, int sinceVersion = 0, Func<T, int, bool>? exists = null)
        where TChild : class =>
        Add(new StructField<T, TChild>(name, child, description, sinceVersion, exists));

    /// <summary>
    /// An array of nested objects sharing <paramref name="description"/>: the whole list, or
    /// the first <paramref name="count"/> elements (the value of an earlier field, at most the list's length).
    /// </summary>
    public VMStateDescriptionBuilder<T> StructArray<TChild>(string name, Func<T, IReadOnlyList<TChild>> elements, VMStateDescription<TChild> description, Func<T, long>? count = null, int sinceVersion = 0, Func<T, int, bool>? exists = null)
        where TChild : class =>
        Add(new StructArrayField<T, TChild>(name, elements, description, count, sinceVersion, exists));

    /// <summary>Runs before the fields are saved; throwing fails the save ("pre-save failed: NAME").</summary>
    public VMStateDescriptionBuilder<T> PreSave(Action<T> hook) => SetOnce(ref _preSave, hook, "pre-save hook");

    /// <summary>Runs after the body is saved, also after a failed save (its own failure is then ignored).</summary>
    public VMStateDescriptionBuilder<T> PostSave(Action<T> hook) => SetOnce(ref _postSave, hook, "post-save hook");

    /// <summary>Runs after the version check and before the fields are loaded; throwing fails the load.</summary>
    public VMStateDescriptionBuilder<T> PreLoad(Action<T> hook) => SetOnce(ref _preLoad, hook, "pre-load hook");

    /// <summary>Runs after the fields and subsections are loaded, with the incoming version; throwing fails the load.</summary>
    public VMStateDescriptionBuilder<T> PostLoad(Action<T, int> hook) => SetOnce(ref _postLoad, hook, "post-load hook");

    /// <summary>Whether the state is sent at all (for a subsection: whether the subsection is sent).</summary>
    public VMStateDescriptionBuilder<T> Needed(Func<T, bool> needed) => SetOnce(ref _needed, needed, "needed predicate");

    /// <summary>
    /// Adds a subsection, sent after the fields when <paramref name="needed"/> (or, when that
    /// is null, the subsection's own <see cref="VMStateDescription{T}.Needed"/>) says so.
    /// Its name must be this description's name, "/", and at least one more character.
    /// </summary>
    public VMStateDescriptionBuilder<T> Subsection(VMStateDescription<T> subsection, Func<T, bool>? needed = null)
    {
        ArgumentNullException.ThrowIfNull(subsection);
        string prefix = _name + "/";
        if (subsection.Name.Length <= prefix.Length || !subsection.Name.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"subsection '{subsection.Name}' of '{_name}' must be named '{prefix}...'", nameof(subsection));
        }

        if (Encoding.UTF8.GetByteCount(subsection.Name) > MaxSubsectionNameBytes)
        {
            throw new ArgumentException(
                $"subsection name '{subsection.Name}' is longer than {MaxSubsectionNameBytes} bytes", nameof(subsection));
        }

        if (_subsections.Any(s => s.Description.Name == subsection.Name))
        {
            throw new ArgumentException($"subsection '{subsection.Name}' is already part of '{_name}'", nameof(subsection));
        }

        _subsections.Add(new VMStateSubsection<T>(subsection, needed ?? subsection.Needed));
        return this;
    }

    /// <summary>Sets where the device goes in the save order (default <see cref="MigrationPriority.Default"/>).</summary>
    public VMStateDescriptionBuilder<T> Priority(MigrationPriority priority)
    {
        if (!Enum.IsDefined(priority))
        {
            throw new ArgumentOutOfRangeException(nameof(priority), priority, "unknown migration priority");
        }

        _priority = priority;
        return this;
    }

    /// <summary>Marks the device as blocking migration.</summary>
    public VMStateDescriptionBuilder<T> Unmigratable()
    {
        _unmigratable = true;
        return this;
    }

    /// <summary>Marks the state as sent during migration setup.</summary>
    public VMStateDescriptionBuilder<T> EarlySetup()
    {
        _earlySetup = true;
        return this;
    }

    /// <summary>Returns the finished, immutable description.</summary>
    public VMStateDescription<T> Done() =>
        new(_name, _version, _minimumVersion, _priority, _unmigratable, _earlySetup, _fields, _subsections,
            _needed, _preSave, _postSave, _preLoad, _postLoad);

    private VMStateDescriptionBuilder<T> Add(VMStateField<T> field)
    {
        _fields.Add(field);
        return this;
    }

    private VMStateDescriptionBuilder<T> SetOnce<THook>(ref THook? slot, THook hook, string what)
        where THook : Delegate
    {
        ArgumentNullException.ThrowIfNull(hook);
        if (slot is not null)
        {
            throw new InvalidOperationException($"the {what} of '{_name}' is already set");
        }

        slot = hook;
        return this;
    }
}
