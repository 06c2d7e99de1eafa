using MiniVmm.Fuzz.Tests.Engine;
using MiniVmm.GuestHarness.Protocol;

namespace MiniVmm.Fuzz.Tests.Targets;

/// <summary>
/// The guest-harness payload parsers (<see cref="HarnessPayloads"/>) and the frame header on
/// any bytes: each either parses or throws <see cref="HarnessProtocolException"/>; what parses
/// as a u64 or a dirty-log table encodes back to the same bytes.
/// </summary>
internal sealed class HarnessPayloadsTarget : IFuzzTarget
{
    public string Name => "harness-payloads";

    public IReadOnlyList<FuzzSeed> Seeds { get; } =
    [
        new("mem-table", HarnessPayloads.MemTable(
            [new HarnessMemoryRegion(0, 64 << 20, 0, "ram"), new HarnessMemoryRegion(1UL << 32, 1 << 20, 4096, "pc.rom-a-long-block-name-0123456789abc")]),
            [0, 4, 8, 16, 24, 32, 72, 80, 88, 96]),
        new("dirty-logs", HarnessPayloads.DirtyLogs([new HarnessDirtyLog(2048, 0), new HarnessDirtyLog(32, 4096)]), [0, 8, 16, 24]),
        new("status", HarnessPayloads.Status(-22), [0]),
        new("features", HarnessPayloads.U64(3), [0]),
    ];

    public bool BigEndianLengths => false;

    public TimeSpan CaseTimeout => TimeSpan.FromSeconds(5);

    public string? LastRejection { get; private set; }

    public CaseOutcome Run(byte[] input)
    {
        LastRejection = null;
        bool accepted = false;
        accepted |= Try("ReadU64", () =>
        {
            ulong value = HarnessPayloads.ReadU64(input, "fuzz");
            Same("U64", HarnessPayloads.U64(value), input);
            _ = HarnessPayloads.ReadStatus(input, "fuzz");
        });
        accepted |= Try("ReadMemTable", () =>
        {
            IReadOnlyList<HarnessMemoryRegion> regions = HarnessPayloads.ReadMemTable(input);
            if (8 + regions.Count * HarnessMemoryRegion.EntryLength != input.Length)
            {
                throw new FuzzFinding($"ReadMemTable returned {regions.Count} regions from {input.Length} bytes");
            }
        });
        accepted |= Try("ReadDirtyLogs", () => Same("DirtyLogs", HarnessPayloads.DirtyLogs(HarnessPayloads.ReadDirtyLogs(input)), input));
        if (input.Length >= HarnessFrameHeader.Length)
        {
            HarnessFrameHeader header = HarnessFrameHeader.Read(input);
            _ = header.ToString();
            _ = HarnessPayloads.MaxIncomingPayload(header.Request);
        }

        return accepted ? CaseOutcome.Accepted : CaseOutcome.Rejected;
    }

    public void Dispose()
    {
    }

    private static bool Try(string parser, Action parse)
    {
        try
        {
            parse();
            return true;
        }
        catch (Exception error) when (error is not FuzzFinding)
        {
            ErrorRules.RequireTyped(error, parser, typeof(HarnessProtocolException));
            return false;
        }
    }

    private static void Same(string encoder, byte[] encoded, byte[] input)
    {
        if (!encoded.AsSpan().SequenceEqual(input))
        {
            throw new FuzzFinding($"{encoder} of what was parsed does not give the input back");
        }
    }
}
