using MiniVmm.Migration.Stream;
using MiniVmm.Migration.Testing;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Tests.VMState;

/// <summary>Saves descriptions to byte arrays and loads them back (through the conformance kit), and builds raw stream pieces, for tests.</summary>
internal static class VMStateStreams
{
    public static byte[] Save(VMStateDescription description, object state, VmDescriptionWriter? vmdesc = null) =>
        VMStateBytes.Save(description, state, vmdesc);

    /// <summary>Loads <paramref name="bytes"/> and returns how many of them the load consumed.</summary>
    public static long Load(VMStateDescription description, byte[] bytes, object state, int? versionId = null) =>
        VMStateBytes.Load(description, bytes, state, versionId);

    public static MigrationStreamReader Reader(byte[] bytes) => VMStateBytes.Reader(bytes);

    /// <summary>The vmdesc members a description adds, wrapped in an object: <c>{"vmsd_name": ...}</c>.</summary>
    public static string Describe(VMStateDescription description, object state) => VMStateBytes.Describe(description, state);

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    public static byte[] Be32(uint value) => [(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value];

    public static byte[] SubsectionHeader(string name, uint version) =>
        Concat([VMStateDescription.SubsectionMarker, (byte)name.Length], System.Text.Encoding.ASCII.GetBytes(name), Be32(version));
}
