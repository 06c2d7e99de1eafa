using System.Text.Json.Nodes;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary>
/// <c>stop</c>: pauses the VM. During an incoming migration it only cancels the automatic start
/// at the end; a VM that is not running is left as it is.
/// </summary>
public sealed class StopCommand : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "stop";

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        VirtualMachine vm = context.Vm;
        if (vm.State == RunState.InMigrate)
        {
            vm.Autostart = false;
        }
        else
        {
            vm.Stop(RunState.Paused).ThrowIfFailed();
        }

        return null;
    }
}
