using System.Text.Json.Nodes;
using MiniVmm.Host.Qmp.Protocol;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>query-version</c>: the QEMU version MiniVmm is compatible with, and its package name.</summary>
public sealed class QueryVersionCommand : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "query-version";

    /// <inheritdoc/>
    public bool RequiresBigLock => false;

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context) => QmpMessages.Version();
}
