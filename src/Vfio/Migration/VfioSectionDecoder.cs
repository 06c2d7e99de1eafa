using System.Text.Json.Nodes;
using MiniVmm.Migration.Analysis;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Vfio.Migration;

/// <summary>
/// The analyzer's reader of VFIO sections (<c>ID/vfio</c>): the same tags the handler writes
/// (<see cref="VfioStreamTag"/>), listed with the sizes of the DATA records; the data itself is
/// skipped and the config is counted, not decoded.
/// </summary>
public sealed class VfioSectionDecoder : IStreamSectionDecoder
{
    /// <inheritdoc />
    public bool Decodes(string idStr) => idStr.EndsWith("/vfio", StringComparison.Ordinal);

    /// <inheritdoc />
    public JsonObject DecodeBody(MigrationStreamReader reader, SectionType type, uint versionId, long bytesLeft)
    {
        long start = reader.Offset;
        var records = new JsonArray();
        long dataBytes = 0;
        while (true)
        {
            long at = reader.Offset;
            ulong tag = reader.GetBe64();
            switch ((VfioStreamTag)tag)
            {
                case VfioStreamTag.EndOfState:
                    records.Add("END_OF_STATE");
                    return Result(records, dataBytes);
                case VfioStreamTag.InitDataSent:
                    records.Add("INIT_DATA_SENT");
                    return Result(records, dataBytes);
                case VfioStreamTag.SetupState:
                    records.Add("SETUP_STATE");
                    break;
                case VfioStreamTag.ConfigState:
                    // The config is VfioDeviceConfig.Size bytes (a VMState buffer), then END_OF_STATE.
                    reader.Skip(Checked(VfioDeviceConfig.Size, reader.Offset, start, bytesLeft, "the device config"));
                    records.Add(new JsonObject { ["config_state"] = VfioDeviceConfig.Size });
                    break;
                case VfioStreamTag.DataState:
                    ulong size = reader.GetBe64();
                    reader.Skip(Checked(size, reader.Offset, start, bytesLeft, "a DATA record"));
                    dataBytes += (long)size;
                    records.Add(new JsonObject { ["data_state"] = size });
                    break;
                default:
                    throw new MigrationStreamException($"VFIO section: unknown tag 0x{tag:x16}", at);
            }
        }
    }

    private static JsonObject Result(JsonArray records, long dataBytes) => new()
    {
        ["format"] = "vfio",
        ["data_bytes"] = dataBytes,
        ["records"] = records,
    };

    private static long Checked(ulong length, long offset, long start, long bytesLeft, string what)
    {
        long left = bytesLeft - (offset - start);
        return length <= (ulong)Math.Max(0, left)
            ? (long)length
            : throw new MigrationStreamException($"VFIO section: {what} of {length} bytes runs past the end of the stream ({left} left)", offset);
    }
}
