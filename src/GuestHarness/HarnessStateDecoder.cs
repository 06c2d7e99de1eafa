using System.Security.Cryptography;
using System.Text.Json.Nodes;
using MiniVmm.GuestHarness.Protocol;
using MiniVmm.Migration.Analysis;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.GuestHarness;

/// <summary>
/// The analyzer's reader of the <c>x-guest-harness</c> section: the length of the harness's
/// state, its first bytes in hex and its SHA-256 (the state is the harness's own format).
/// </summary>
public sealed class HarnessStateDecoder : IStreamSectionDecoder
{
    private const int ShownBytes = 64;

    /// <inheritdoc />
    public bool Decodes(string idStr) => idStr == HarnessStateSection.IdStr;

    /// <inheritdoc />
    public JsonObject DecodeBody(MigrationStreamReader reader, SectionType type, uint versionId, long bytesLeft)
    {
        long at = reader.Offset;
        uint length = reader.GetBe32();
        if (length > HarnessPayloads.MaxStateBytes || length > bytesLeft - 4)
        {
            throw new MigrationStreamException(
                $"{HarnessStateSection.IdStr}: a state of {length} bytes is more than the stream holds or a harness may save", at);
        }

        byte[] state = reader.ReadBytes(length, $"{HarnessStateSection.IdStr} state", HarnessPayloads.MaxStateBytes);
        return new JsonObject
        {
            ["format"] = "guest-harness-state",
            ["state_bytes"] = length,
            ["head"] = Convert.ToHexString(state.AsSpan(0, Math.Min(state.Length, ShownBytes))),
            ["sha256"] = Convert.ToHexString(SHA256.HashData(state)),
        };
    }
}
