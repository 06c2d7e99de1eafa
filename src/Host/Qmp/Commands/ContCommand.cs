using System.Text.Json.Nodes;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary>
/// <c>cont</c>: resumes the VM, with QEMU's exceptions: a VM that needs a reset or is finishing
/// a migration refuses, a suspended one stays suspended, and during an incoming migration it only
/// asks for the VM to start once the migration is done.
/// </summary>
public sealed class ContCommand : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "cont";

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        VirtualMachine vm = context.Vm;
        if (vm.NeedsReset)
        {
            throw new QmpException("Resetting the Virtual Machine is required");
        }

        switch (vm.State)
        {
            case RunState.Suspended:
                break;
            case RunState.FinishMigrate:
                throw new QmpException("Migration is not finalized yet");
            case RunState.InMigrate:
                vm.Autostart = true;
                break;
            default:
                vm.Start().ThrowIfFailed();
                break;
        }

        return null;
    }
}
