using MiniVmm.GuestHarness.Protocol;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;

namespace MiniVmm.GuestHarness;

/// <summary>
/// The <c>x-guest-harness</c> section (instance 0, version 1): the harness's own state, a FULL
/// section written at completion while the VM, and so the harness, is paused. Its body is
/// <c>be32 length</c> and that many state bytes (at most 16 MiB). The section exists once a
/// harness that announced STATE has connected.
/// </summary>
public sealed class HarnessStateSection(HarnessGuest guest) : ISaveVmHandlers
{
    /// <summary>The section's name.</summary>
    public const string IdStr = "x-guest-harness";

    /// <summary>The section's version.</summary>
    public const int VersionId = 1;

    /// <inheritdoc />
    public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.SaveState;

    /// <inheritdoc />
    public SectionKind Kind => SectionKind.Harness;

    /// <inheritdoc />
    public bool IsActive() => guest.HasState;

    /// <summary>Asks the paused harness for its state and writes it. Big lock held, VM stopped.</summary>
    public void SaveState(MigrationStreamWriter stream)
    {
        byte[] state = guest.SaveState();
        stream.PutBe32((uint)state.Length);
        stream.PutBuffer(state);
    }

    /// <summary>Reads the state and gives it to this VM's harness with LOAD_STATE. Big lock held.</summary>
    public void LoadState(MigrationStreamReader stream, int versionId)
    {
        uint length = stream.GetBe32();
        if (length > HarnessPayloads.MaxStateBytes)
        {
            throw new InvalidDataException(
                $"{IdStr}: the state is {length} bytes; a harness state is at most {HarnessPayloads.MaxStateBytes}");
        }

        byte[] state = stream.ReadBytes(length, $"{IdStr} state", HarnessPayloads.MaxStateBytes);
        guest.LoadState(state);
    }
}
