using System.Collections.Frozen;

namespace MiniVmm.Host.Qmp;

/// <summary>Every QMP command registered in the service collection, by name.</summary>
public sealed class QmpCommandRegistry
{
    private readonly FrozenDictionary<string, IQmpCommand> _byName;

    /// <summary>Indexes <paramref name="commands"/>; two commands with one name are an error.</summary>
    public QmpCommandRegistry(IEnumerable<IQmpCommand> commands)
    {
        var byName = new Dictionary<string, IQmpCommand>(StringComparer.Ordinal);
        foreach (IQmpCommand command in commands)
        {
            if (!byName.TryAdd(command.Name, command))
            {
                throw new InvalidOperationException(
                    $"two QMP commands are registered as '{command.Name}': {byName[command.Name].GetType().Name} and {command.GetType().Name}");
            }
        }

        _byName = byName.ToFrozenDictionary(StringComparer.Ordinal);
        Names = [.. _byName.Keys.Order(StringComparer.Ordinal)];
    }

    /// <summary>The names of every command, sorted.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Finds a command by name.</summary>
    public bool TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IQmpCommand? command) =>
        _byName.TryGetValue(name, out command);
}
