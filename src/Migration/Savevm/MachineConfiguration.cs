using System.Text;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// The configuration section that follows the stream header (QEMU's "configuration" VMState):
/// the machine type name and, in subsections, the validated capabilities and target page bits.
/// It has no section id and no footer.
/// </summary>
public sealed record MachineConfiguration(string MachineName, IReadOnlyList<string> Capabilities, int? TargetPageBits = null)
{
    /// <summary>The capabilities QEMU 7.2 validates against the destination's.</summary>
    public static IReadOnlyList<string> ValidatedCapabilities { get; } = ["x-ignore-shared"];

    /// <summary>Every migration capability name QEMU 7.2 knows; any other name in the stream is an error.</summary>
    public static IReadOnlyList<string> KnownCapabilities { get; } =
    [
        "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events", "postcopy-ram",
        "x-colo", "release-ram", "block", "return-path", "pause-before-switchover", "multifd",
        "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "x-ignore-shared", "validate-uuid",
        "background-snapshot", "zero-copy-send", "postcopy-preempt",
    ];

    private const string SubsectionPrefix = "configuration/";
    private const string CapabilitiesSubsection = "configuration/capabilities";
    private const string PageBitsSubsection = "configuration/target-page-bits";
    private const string UuidSubsection = "configuration/uuid";
    private const int MaxNameBytes = 256;
    private const int MaxCapabilities = 64;
    private const int X86TargetPageBits = 12;

    /// <summary>Writes the section body (after the 0x07 type byte).</summary>
    public void Write(MigrationStreamWriter stream)
    {
        byte[] name = Encoding.UTF8.GetBytes(MachineName);
        stream.PutBe32((uint)name.Length);
        stream.PutBuffer(name);
        if (Capabilities.Count > 0)
        {
            stream.PutByte((byte)SectionType.Subsection);
            stream.PutCountedString(CapabilitiesSubsection);
            stream.PutBe32(1);
            stream.PutBe32((uint)Capabilities.Count);
            foreach (string capability in Capabilities)
            {
                stream.PutCountedString(capability);
            }
        }
    }

    /// <summary>
    /// Reads a section body. Subsections follow VMState's rules: a 0x05 byte that does not
    /// introduce a <c>configuration/...</c> name is left in the stream.
    /// </summary>
    public static MachineConfiguration Read(MigrationStreamReader stream)
    {
        long start = stream.Offset;
        uint length = stream.GetBe32();
        if (length > MaxNameBytes)
        {
            throw new MigrationLoadException(
                $"configuration section: machine name length {length} is longer than {MaxNameBytes}", start);
        }

        byte[] nameBytes = new byte[length];
        stream.ReadExactly(nameBytes);
        string name = Encoding.UTF8.GetString(nameBytes);
        var capabilities = new List<string>();
        int? pageBits = null;

        while (stream.PeekByte() == (int)SectionType.Subsection)
        {
            ReadOnlySpan<byte> peek = stream.Peek(2 + 255);
            if (peek.Length < 2 || peek[1] < SubsectionPrefix.Length || peek.Length < 2 + peek[1])
            {
                break;
            }

            string subsection = Encoding.ASCII.GetString(peek.Slice(2, peek[1]));
            if (!subsection.StartsWith(SubsectionPrefix, StringComparison.Ordinal))
            {
                break;
            }

            long at = stream.Offset;
            stream.Skip(2 + peek[1]);
            _ = stream.GetBe32(); // subsection version; all three are version 1
            switch (subsection)
            {
                case CapabilitiesSubsection:
                    uint count = stream.GetBe32();
                    if (count > MaxCapabilities)
                    {
                        throw new MigrationLoadException(
                            $"configuration section: {count} capabilities is more than any QEMU has", at);
                    }

                    for (uint i = 0; i < count; i++)
                    {
                        capabilities.Add(stream.GetCountedString());
                    }

                    break;
                case PageBitsSubsection:
                    pageBits = (int)stream.GetBe32();
                    break;
                case UuidSubsection:
                    stream.Skip(16);
                    break;
                default:
                    throw new MigrationLoadException(
                        $"VM subsection '{subsection}' in 'configuration' does not exist", at);
            }
        }

        return new MachineConfiguration(name, capabilities, pageBits);
    }

    /// <summary>
    /// Checks a received configuration against this side's, as QEMU's post_load does: the
    /// machine name compared over the received length only, the page size, then every
    /// validated capability's on/off state.
    /// </summary>
    public void CheckReceived(MachineConfiguration received, long offset)
    {
        string local = MachineName;
        bool nameMatches = received.MachineName.Length <= local.Length
            && local.StartsWith(received.MachineName, StringComparison.Ordinal);
        if (!nameMatches)
        {
            throw new MigrationLoadException(
                $"Machine type received is '{received.MachineName}' and local is '{local}'", offset);
        }

        if (received.TargetPageBits is { } bits && bits != X86TargetPageBits)
        {
            throw new MigrationLoadException(
                $"Received TARGET_PAGE_BITS is {bits} but local is {X86TargetPageBits}", offset);
        }

        foreach (string capability in received.Capabilities)
        {
            if (!KnownCapabilities.Contains(capability))
            {
                throw new MigrationLoadException($"Received unknown capability {capability}", offset);
            }
        }

        var mismatches = new List<string>();
        foreach (string capability in ValidatedCapabilities)
        {
            bool mine = Capabilities.Contains(capability);
            bool theirs = received.Capabilities.Contains(capability);
            if (mine != theirs)
            {
                mismatches.Add($"Capability {capability} is {OnOff(mine)}, but received capability is {OnOff(theirs)}");
            }
        }

        if (mismatches.Count > 0)
        {
            throw new MigrationLoadException(string.Join("; ", mismatches), offset);
        }

        static string OnOff(bool on) => on ? "on" : "off";
    }
}
