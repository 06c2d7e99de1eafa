using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// How one scalar value is written to and read from the stream, and the type name the device
/// description shows for it.
/// </summary>
internal sealed class ScalarEncoding<TValue>
    where TValue : struct, IEquatable<TValue>
{
    private readonly Action<MigrationStreamWriter, TValue> _put;
    private readonly Func<MigrationStreamReader, TValue> _get;

    public ScalarEncoding(string typeName, Action<MigrationStreamWriter, TValue> put, Func<MigrationStreamReader, TValue> get)
    {
        TypeName = typeName;
        _put = put;
        _get = get;
    }

    /// <summary>The vmdesc type name, e.g. "int64".</summary>
    public string TypeName { get; }

    /// <summary>Type name of the variant that checks the incoming value against the local one, e.g. "uint32 equal".</summary>
    public string EqualTypeName => TypeName + " equal";

    public void Put(MigrationStreamWriter stream, TValue value) => _put(stream, value);

    public TValue Get(MigrationStreamReader stream) => _get(stream);
}
