using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// One entry of a description's field list: which elements it has, how each is saved and
/// loaded, when it is in the stream, and how the device description (vmdesc) shows it.
/// </summary>
/// <typeparam name="T">The device's state type.</typeparam>
internal abstract class VMStateField<T>
    where T : class
{
    protected VMStateField(string name, string typeName, int sinceVersion, Func<T, int, bool>? exists)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfNegative(sinceVersion);
        Name = name;
        TypeName = typeName;
        SinceVersion = sinceVersion;
        Exists = exists;
    }

    public string Name { get; }

    public string TypeName { get; }

    /// <summary>First version containing the field, used when <see cref="Exists"/> is null.</summary>
    public int SinceVersion { get; }

    /// <summary>When set, the only judge of whether the field is in the stream for a version.</summary>
    public Func<T, int, bool>? Exists { get; }

    /// <summary>True for fields whose elements are nested descriptions.</summary>
    public virtual bool IsStruct => false;

    /// <summary>
    /// Whether every element is described alike, so an array needs only its first element in
    /// the vmdesc (with "array_len"): not when an exists-predicate decides presence, nor for
    /// structs containing such fields or having subsections.
    /// </summary>
    public virtual bool IsCompressible => Exists is null;

    public VMStateFieldInfo Info => new(Name, TypeName, SinceVersion, Exists is not null);

    public bool IsPresent(T state, int versionId) =>
        Exists is not null ? Exists(state, versionId) : SinceVersion <= versionId;

    /// <summary>
    /// Writes every element, describing each in <paramref name="vmdesc"/> (when given) as an
    /// object in the currently open "fields" array. Elements of a compressible array after
    /// the first are not described.
    /// </summary>
    /// <param name="stream">Where the bytes go.</param>
    /// <param name="state">The object the field lives in.</param>
    /// <param name="vmdesc">The vmdesc writer, or null.</param>
    /// <param name="descriptionName">The field's name in the vmdesc, made unique within its description.</param>
    public void Save(MigrationStreamWriter stream, T state, VmDescriptionWriter? vmdesc, string descriptionName)
    {
        int count = ElementCountForSave(stream, state);
        bool isArray = count > 1;
        bool compressible = IsCompressible;
        VmDescriptionWriter? elementDescription = vmdesc;
        for (int index = 0; index < count; index++)
        {
            if (elementDescription is not null)
            {
                elementDescription.StartObject();
                elementDescription.String("name", descriptionName);
                if (isArray)
                {
                    if (compressible)
                    {
                        elementDescription.Int64("array_len", count);
                    }
                    else
                    {
                        elementDescription.Int64("index", index);
                    }
                }

                elementDescription.String("type", TypeName);
                if (IsStruct)
                {
                    elementDescription.StartObject("struct");
                }
            }

            long before = stream.BytesWritten;
            SaveElement(stream, state, index, elementDescription);

            if (elementDescription is not null)
            {
                if (IsStruct)
                {
                    elementDescription.EndObject();
                }

                elementDescription.Int64("size", stream.BytesWritten - before);
                elementDescription.EndObject();
                if (compressible)
                {
                    elementDescription = null;
                }
            }
        }
    }

    /// <summary>Reads every element; the element count is checked against the capacity first.</summary>
    public void Load(MigrationStreamReader stream, T state)
    {
        int count = ElementCountForLoad(stream, state);
        for (int index = 0; index < count; index++)
        {
            LoadElement(stream, state, index);
        }
    }

    /// <summary>Number of elements to write (validated against the capacity).</summary>
    protected virtual int ElementCountForSave(MigrationStreamWriter stream, T state) => 1;

    /// <summary>Number of elements to read, validated against the capacity before anything is read.</summary>
    protected virtual int ElementCountForLoad(MigrationStreamReader stream, T state) => 1;

    /// <summary>Writes element <paramref name="index"/>.</summary>
    /// <param name="stream">Where the bytes go.</param>
    /// <param name="state">The object the field lives in.</param>
    /// <param name="index">The element.</param>
    /// <param name="vmdesc">Where a nested description describes itself (inside the open "struct" object), or null.</param>
    protected abstract void SaveElement(MigrationStreamWriter stream, T state, int index, VmDescriptionWriter? vmdesc);

    protected abstract void LoadElement(MigrationStreamReader stream, T state, int index);
}
