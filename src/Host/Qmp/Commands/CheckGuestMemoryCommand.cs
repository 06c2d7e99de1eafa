using System.Text.Json.Nodes;
using MiniVmm.Host.Guest;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary>
/// <c>x-check-guest-memory</c>: runs QEMU migration-test's consistency check for the
/// incrementing guest over this VM's RAM (meaningful while the VM is stopped) and reports the
/// first byte at 1 MiB and, with <c>-guest dirty</c>, how many pages the guest has written in
/// this process (it grows while the guest runs).
/// </summary>
public sealed class CheckGuestMemoryCommand(GuestMemory? memory = null, DirtyingGuest? guest = null) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "x-check-guest-memory";

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        if (memory is null || memory.TotalBytes <= DirtyingGuest.StartAddress)
        {
            throw new QmpException($"the check needs more than {DirtyingGuest.StartAddress >> 20} MiB of RAM");
        }

        GuestMemoryConsistency.Result result = GuestMemoryConsistency.Check(memory);
        return new JsonObject
        {
            ["consistent"] = result.Consistent,
            ["steps"] = result.Steps,
            ["first-bad-address"] = result.FirstBadAddress,
            ["first-byte"] = memory.Blocks[0].GetSpan(DirtyingGuest.StartAddress, 1)[0],
            ["description"] = result.Description,
            ["guest-pages-written"] = guest?.PagesWritten ?? 0,
        };
    }
}
