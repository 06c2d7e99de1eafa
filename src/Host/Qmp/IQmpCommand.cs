using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp;

/// <summary>
/// A QMP command. Register each one with
/// <see cref="QmpServiceCollectionExtensions.AddQmpCommand{TCommand}"/>. The dispatcher checks the
/// arguments against <see cref="Parameters"/> and calls <see cref="Execute"/>, with the VM's big
/// lock held unless <see cref="RequiresBigLock"/> says otherwise.
/// </summary>
public interface IQmpCommand
{
    /// <summary>The name clients put in <c>execute</c>.</summary>
    string Name { get; }

    /// <summary>
    /// Whether the command runs with the VM's big lock held (the default, as QEMU's monitor runs
    /// in the main loop). A read-only query of immutable snapshots says false, so that polling it
    /// never waits for (or slows down) an incoming migration that holds the lock while loading.
    /// </summary>
    bool RequiresBigLock => true;

    /// <summary>The parameters <c>arguments</c> may carry; anything else is rejected.</summary>
    IReadOnlyList<QmpParameter> Parameters => [];

    /// <summary>
    /// Runs the command. Returns what goes in <c>return</c> (null for an empty object); throws
    /// <see cref="QmpException"/> for an error the client should see.
    /// </summary>
    /// <param name="arguments">The checked arguments; empty when the client sent none.</param>
    /// <param name="context">The VM, the session and the other commands.</param>
    JsonNode? Execute(JsonObject arguments, QmpContext context);
}
