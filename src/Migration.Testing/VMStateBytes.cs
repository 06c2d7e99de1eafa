using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Testing;

/// <summary>Saves VMState descriptions to byte arrays and loads them back: the plumbing of the conformance checks.</summary>
public static class VMStateBytes
{
    /// <summary>The bytes <paramref name="description"/> writes for <paramref name="state"/> (and its vmdesc members, if asked).</summary>
    public static byte[] Save(VMStateDescription description, object state, VmDescriptionWriter? vmdesc = null)
    {
        var buffer = new MemoryStream();
        using (var writer = new MigrationStreamWriter(buffer, leaveOpen: true))
        {
            description.Save(writer, state, vmdesc);
        }

        return buffer.ToArray();
    }

    /// <summary>The bytes an older version <paramref name="versionId"/> of <paramref name="description"/> writes for <paramref name="state"/>.</summary>
    public static byte[] SaveAsVersion<T>(VMStateDescription<T> description, T state, int versionId)
        where T : class
    {
        var buffer = new MemoryStream();
        using (var writer = new MigrationStreamWriter(buffer, leaveOpen: true))
        {
            description.SaveAsVersion(writer, state, versionId);
        }

        return buffer.ToArray();
    }

    /// <summary>Loads <paramref name="bytes"/> into <paramref name="state"/> and returns how many bytes the load consumed.</summary>
    public static long Load(VMStateDescription description, byte[] bytes, object state, int? versionId = null)
    {
        using MigrationStreamReader reader = Reader(bytes);
        description.Load(reader, state, versionId ?? description.VersionId);
        return reader.Offset;
    }

    /// <summary>A reader over <paramref name="bytes"/>.</summary>
    public static MigrationStreamReader Reader(byte[] bytes) => new(new MemoryStream(bytes, writable: false));

    /// <summary>The vmdesc members a description adds, wrapped in an object: <c>{"vmsd_name": ...}</c>.</summary>
    public static string Describe(VMStateDescription description, object state)
    {
        var vmdesc = new VmDescriptionWriter();
        vmdesc.StartObject();
        Save(description, state, vmdesc);
        vmdesc.EndObject();
        return vmdesc.ToString();
    }
}
