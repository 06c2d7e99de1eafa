using System.Text.Json.Nodes;
using MiniVmm.Host.Hosting;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>quit</c>: replies, then asks the process to shut down (SHUTDOWN reason <c>host-qmp-quit</c>).</summary>
public sealed class QuitCommand(ShutdownLatch shutdown) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "quit";

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        context.RunAfterReply(() => shutdown.Request(ShutdownCause.HostQmpQuit));
        return null;
    }
}
