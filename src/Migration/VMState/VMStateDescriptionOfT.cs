using System.Text;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// The description of a state object of type <typeparamref name="T"/>; see
/// <see cref="VMStateDescription"/>. Fields reach into the object through accessors
/// (<c>s =&gt; ref s.Value</c>), the C# counterpart of QEMU's field offsets.
/// </summary>
/// <typeparam name="T">The device's state type.</typeparam>
public sealed class VMStateDescription<T> : VMStateDescription
    where T : class
{
    private readonly VMStateField<T>[] _fields;
    private readonly string[] _fieldDescriptionNames;
    private readonly VMStateSubsection<T>[] _subsections;
    private readonly byte[] _nameBytes;
    private readonly Action<T>? _preSave;
    private readonly Action<T>? _postSave;
    private readonly Action<T>? _preLoad;
    private readonly Action<T, int>? _postLoad;

    internal VMStateDescription(
        string name,
        int versionId,
        int minimumVersionId,
        MigrationPriority priority,
        bool unmigratable,
        bool earlySetup,
        IReadOnlyList<VMStateField<T>> fields,
        IReadOnlyList<VMStateSubsection<T>> subsections,
        Func<T, bool>? needed,
        Action<T>? preSave,
        Action<T>? postSave,
        Action<T>? preLoad,
        Action<T, int>? postLoad)
        : base(name, versionId, minimumVersionId, priority, unmigratable, earlySetup)
    {
        _fields = [.. fields];
        _fieldDescriptionNames = UniqueFieldNames(_fields);
        _subsections = [.. subsections];
        _nameBytes = Encoding.UTF8.GetBytes(name);
        Needed = needed;
        _preSave = preSave;
        _postSave = postSave;
        _preLoad = preLoad;
        _postLoad = postLoad;
        Fields = Array.AsReadOnly(_fields.Select(f => f.Info).ToArray());
        Subsections = Array.AsReadOnly(_subsections.Select(s => (VMStateDescription)s.Description).ToArray());
        IsCompressible = _subsections.Length == 0 && _fields.All(f => f.IsCompressible);
    }

    /// <summary>Starts describing a state type.</summary>
    /// <param name="name">The description's name; a subsection's must be its parent's name, "/" and more.</param>
    /// <param name="version">The version this side saves.</param>
    /// <param name="minimumVersion">The oldest incoming version this side can load.</param>
    public static VMStateDescriptionBuilder<T> Build(string name, int version, int minimumVersion) =>
        new(name, version, minimumVersion);

    /// <summary>
    /// The description's own "needed" predicate (null: always needed). For a subsection it
    /// decides whether the subsection is sent, unless the parent gave its own predicate.
    /// </summary>
    public Func<T, bool>? Needed { get; }

    /// <inheritdoc/>
    public override Type StateType => typeof(T);

    /// <inheritdoc/>
    public override IReadOnlyList<VMStateDescription> Subsections { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<VMStateFieldInfo> Fields { get; }

    /// <summary>
    /// True when every field is compressible and there are no subsections, so an array of
    /// such structs is described once in the vmdesc.
    /// </summary>
    internal bool IsCompressible { get; }

    /// <inheritdoc/>
    public override bool IsNeeded(object opaque) => IsNeeded(StateOf(opaque));

    /// <summary>Whether the state must be sent (the <see cref="Needed"/> predicate, or true).</summary>
    public bool IsNeeded(T state) => Needed is null || Needed(state);

    /// <inheritdoc/>
    public override void Save(MigrationStreamWriter stream, object opaque, VmDescriptionWriter? vmdesc) =>
        Save(stream, StateOf(opaque), vmdesc);

    /// <summary>Typed form of <see cref="VMStateDescription.Save"/>.</summary>
    public void Save(MigrationStreamWriter stream, T state, VmDescriptionWriter? vmdesc)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(state);
        SaveState(stream, state, vmdesc, VersionId);
    }

    /// <inheritdoc/>
    public override void Load(MigrationStreamReader stream, object opaque, int versionId) =>
        Load(stream, StateOf(opaque), versionId);

    /// <summary>Typed form of <see cref="VMStateDescription.Load"/>.</summary>
    public void Load(MigrationStreamReader stream, T state, int versionId)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(state);
        LoadState(stream, state, versionId);
    }

    /// <summary>
    /// Saves <paramref name="state"/> as version <paramref name="versionId"/> of this description
    /// would have (fields that only exist in later versions are left out): what an older source
    /// sends. For conformance checks of older versions.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The version is outside [minimum, current].</exception>
    public void SaveAsVersion(MigrationStreamWriter stream, T state, int versionId)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(versionId, MinimumVersionId);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(versionId, VersionId);
        SaveState(stream, state, null, versionId);
    }

    internal void SaveState(MigrationStreamWriter stream, T state, VmDescriptionWriter? vmdesc, int versionId)
    {
        RunHook(_preSave, state, "pre-save", stream.BytesWritten);

        try
        {
            if (vmdesc is not null)
            {
                vmdesc.String("vmsd_name", Name);
                vmdesc.Int64("version", versionId);
                vmdesc.StartArray("fields");
            }

            for (int i = 0; i < _fields.Length; i++)
            {
                SaveField(stream, state, vmdesc, versionId, _fields[i], _fieldDescriptionNames[i]);
            }

            vmdesc?.EndArray();
            SaveSubsections(stream, state, vmdesc);
        }
        catch (VMStateException)
        {
            // As QEMU does, post-save still runs after a failed save; the first failure is the one reported.
            try
            {
                _postSave?.Invoke(state);
            }
            catch (Exception)
            {
                // Ignored: the save has already failed.
            }

            throw;
        }

        RunHook(_postSave, state, "post-save", stream.BytesWritten);
    }

    internal void LoadState(MigrationStreamReader stream, T state, int versionId)
    {
        if (versionId > VersionId)
        {
            throw new VMStateException(
                $"{Name}: incoming version_id {versionId} is too new for local version_id {VersionId}",
                stream.Offset,
                descriptionName: Name);
        }

        if (versionId < MinimumVersionId)
        {
            // Two spaces before the number, as in QEMU 7.2's message.
            throw new VMStateException(
                $"{Name}: incoming version_id {versionId} is too old for local minimum version_id  {MinimumVersionId}",
                stream.Offset,
                descriptionName: Name);
        }

        RunHook(_preLoad, state, "pre-load", stream.Offset);

        foreach (VMStateField<T> field in _fields)
        {
            try
            {
                if (field.IsPresent(state, versionId))
                {
                    field.Load(stream, state);
                }
            }
            catch (Exception error)
            {
                throw Fail(stream, new VMStateException(
                    $"Failed to load {Name}:{field.Name}: {VMStateException.DetailOf(error)}",
                    VMStateException.OffsetOf(error, stream.Offset),
                    error,
                    Name,
                    field.Name));
            }
        }

        LoadSubsections(stream, state);

        if (_postLoad is not null)
        {
            try
            {
                _postLoad(state, versionId);
            }
            catch (Exception error)
            {
                throw new VMStateException(
                    $"post-load failed: {Name}: {VMStateException.DetailOf(error)}", stream.Offset, error, Name);
            }
        }
    }

    private void SaveField(
        MigrationStreamWriter stream,
        T state,
        VmDescriptionWriter? vmdesc,
        int versionId,
        VMStateField<T> field,
        string descriptionName)
    {
        try
        {
            if (field.IsPresent(state, versionId))
            {
                field.Save(stream, state, vmdesc, descriptionName);
            }
        }
        catch (Exception error)
        {
            throw new VMStateException(
                $"Save of field {Name}/{field.Name} failed: {VMStateException.DetailOf(error)}",
                VMStateException.OffsetOf(error, stream.BytesWritten),
                error,
                Name,
                field.Name);
        }
    }

    private void SaveSubsections(MigrationStreamWriter stream, T state, VmDescriptionWriter? vmdesc)
    {
        bool describedAny = false;
        foreach (VMStateSubsection<T> subsection in _subsections)
        {
            VMStateDescription<T> sub = subsection.Description;
            bool needed;
            try
            {
                needed = subsection.IsNeeded(state);
            }
            catch (Exception error)
            {
                throw new VMStateException(
                    $"needed check of subsection '{sub.Name}' in '{Name}' failed: {VMStateException.DetailOf(error)}",
                    stream.BytesWritten,
                    error,
                    Name);
            }

            if (!needed)
            {
                continue;
            }

            if (vmdesc is not null)
            {
                if (!describedAny)
                {
                    vmdesc.StartArray("subsections");
                    describedAny = true;
                }

                vmdesc.StartObject();
            }

            try
            {
                stream.PutByte(SubsectionMarker);
                stream.PutCountedString(sub._nameBytes);
                stream.PutBe32((uint)sub.VersionId);
            }
            catch (Exception error)
            {
                throw new VMStateException(
                    $"Save of subsection '{sub.Name}' in '{Name}' failed: {VMStateException.DetailOf(error)}",
                    VMStateException.OffsetOf(error, stream.BytesWritten),
                    error,
                    Name);
            }

            sub.SaveState(stream, state, vmdesc, sub.VersionId);
            vmdesc?.EndObject();
        }

        if (describedAny)
        {
            vmdesc!.EndArray();
        }
    }

    private void LoadSubsections(MigrationStreamReader stream, T state)
    {
        while (stream.PeekByte() == SubsectionMarker)
        {
            // Anything that does not look like one of this description's subsections is left
            // in the stream for the caller: a short name, a short peek, a foreign prefix.
            ReadOnlySpan<byte> header = stream.Peek(2);
            if (header.Length < 2)
            {
                return;
            }

            int nameLength = header[1];
            if (nameLength < _nameBytes.Length + 1)
            {
                return;
            }

            ReadOnlySpan<byte> peeked = stream.Peek(2 + nameLength);
            if (peeked.Length < 2 + nameLength)
            {
                return;
            }

            ReadOnlySpan<byte> name = peeked.Slice(2, nameLength);
            if (!name.StartsWith(_nameBytes))
            {
                return;
            }

            VMStateDescription<T>? sub = FindSubsection(name);
            if (sub is null)
            {
                string unknown = Encoding.UTF8.GetString(name);
                throw Fail(stream, new VMStateException(
                    $"VM subsection '{unknown}' in '{Name}' does not exist", stream.Offset, null, Name));
            }

            try
            {
                stream.Skip(2 + nameLength);

                // QEMU keeps the subsection version in an 8-bit variable: only the low byte of
                // the be32 counts (a version of 0x105 loads as 5).
                int versionId = (byte)stream.GetBe32();
                sub.LoadState(stream, state, versionId);
            }
            catch (Exception error)
            {
                throw Fail(stream, new VMStateException(
                    $"Loading VM subsection '{sub.Name}' in '{Name}' failed: {VMStateException.DetailOf(error)}",
                    VMStateException.OffsetOf(error, stream.Offset),
                    error,
                    Name));
            }
        }
    }

    private VMStateDescription<T>? FindSubsection(ReadOnlySpan<byte> name)
    {
        foreach (VMStateSubsection<T> subsection in _subsections)
        {
            if (name.SequenceEqual(subsection.Description._nameBytes))
            {
                return subsection.Description;
            }
        }

        return null;
    }

    private void RunHook(Action<T>? hook, T state, string what, long offset)
    {
        if (hook is null)
        {
            return;
        }

        try
        {
            hook(state);
        }
        catch (Exception error)
        {
            throw new VMStateException($"{what} failed: {Name}: {VMStateException.DetailOf(error)}", offset, error, Name);
        }
    }

    // Records a load failure as the stream's error (later reads fail too), as QEMU marks its file.
    private static VMStateException Fail(MigrationStreamReader stream, VMStateException error)
    {
        stream.SetError(error);
        return error;
    }

    private T StateOf(object opaque)
    {
        ArgumentNullException.ThrowIfNull(opaque);
        return opaque as T ?? throw new ArgumentException(
            $"description '{Name}' works on {typeof(T).Name}, not on {opaque.GetType().Name}", nameof(opaque));
    }

    // Field names shown in the vmdesc: a name used by more than one field gets "[k]", k
    // counting the fields of that name from 0.
    private static string[] UniqueFieldNames(VMStateField<T>[] fields)
    {
        var totals = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (VMStateField<T> field in fields)
        {
            totals[field.Name] = totals.GetValueOrDefault(field.Name) + 1;
        }

        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var names = new string[fields.Length];
        for (int i = 0; i < fields.Length; i++)
        {
            string name = fields[i].Name;
            if (totals[name] == 1)
            {
                names[i] = name;
                continue;
            }

            int ordinal = seen.GetValueOrDefault(name);
            seen[name] = ordinal + 1;
            names[i] = $"{name}[{ordinal}]";
        }

        return names;
    }
}
