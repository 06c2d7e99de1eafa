using MiniVmm.Runstate;

namespace MiniVmm.Host.Qmp;

/// <summary>What a <see cref="IQmpCommand"/> runs against: the VM, the client's session, the other commands.</summary>
public sealed class QmpContext(VirtualMachine vm, QmpSession session, QmpCommandRegistry commands)
{
    private readonly List<Action> _afterReply = [];

    /// <summary>The VM; its big lock is held while the command runs.</summary>
    public VirtualMachine Vm { get; } = vm;

    /// <summary>The protocol state of the client that sent the command.</summary>
    public QmpSession Session { get; } = session;

    /// <summary>Every registered command.</summary>
    public QmpCommandRegistry Commands { get; } = commands;

    /// <summary>Actions to run once the reply is queued to the client, in order.</summary>
    public IReadOnlyList<Action> AfterReply => _afterReply;

    /// <summary>
    /// Runs <paramref name="action"/> after the reply has been queued, so that what it causes
    /// (e.g. <c>quit</c>'s SHUTDOWN event) reaches the client after the reply.
    /// </summary>
    public void RunAfterReply(Action action) => _afterReply.Add(action);
}
