using System.Text.Json.Nodes;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// A device's VMState fields as JSON, read through its own description: the state is saved into
/// a buffer exactly as a migration would send it, with its vmdesc, and decoded by the same
/// decoder <c>minivmm analyze</c> uses. So what it shows is what would go on the wire.
/// </summary>
public static class VMStateIntrospection
{
    /// <summary><c>{vmsd_name, version, fields: [...], subsections: [...]}</c> for <paramref name="opaque"/> saved with <paramref name="vmsd"/>.</summary>
    public static JsonObject Describe(VMStateDescription vmsd, object opaque)
    {
        ArgumentNullException.ThrowIfNull(vmsd);
        using var buffer = new MemoryStream();
        var vmdesc = new VmDescriptionWriter();
        vmdesc.StartObject();
        using (var writer = new MigrationStreamWriter(buffer, leaveOpen: true))
        {
            vmsd.Save(writer, opaque, vmdesc);
            writer.Flush();
        }

        vmdesc.EndObject();
        JsonObject description = JsonNode.Parse(vmdesc.ToString())!.AsObject();
        buffer.Position = 0;
        using var reader = new MigrationStreamReader(buffer, leaveOpen: true);
        return new VmStateBodyDecoder(reader, buffer.Length).DecodeDevice(description, vmsd.Name);
    }
}
