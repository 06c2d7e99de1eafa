using System.Text.Json.Nodes;
using MiniVmm.GuestHarness;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary>
/// <c>x-query-guest-harness [state: bool]</c>: the guest harness's socket, whether it is
/// connected, its process id, accepted features and throttle, or why it was lost. With
/// <c>state: true</c> on a stopped VM, also the harness's state (SAVE_STATE) in base64, so a
/// client can check the guest against what the harness says it did.
/// </summary>
public sealed class QueryGuestHarnessCommand(HarnessGuest harness) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "x-query-guest-harness";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("state", QmpParameterType.Boolean, Optional: true)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        JsonObject result = harness.Describe();
        if (arguments["state"]?.GetValue<bool>() == true)
        {
            if (context.Vm.IsRunning)
            {
                throw new QmpException("The VM must be stopped to read the guest harness's state");
            }

            result["state"] = Convert.ToBase64String(harness.SaveState());
        }

        return result;
    }
}
