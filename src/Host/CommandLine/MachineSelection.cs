namespace MiniVmm.Host.CommandLine;

/// <summary>The machine <c>-M</c>/<c>-machine</c> asks for: its type and the other properties given.</summary>
/// <param name="Type">The machine type; only <c>none</c> exists.</param>
/// <param name="Properties">The other <c>key=value</c> properties, kept for later use.</param>
public sealed record MachineSelection(string Type, IReadOnlyDictionary<string, string> Properties)
{
    /// <summary>The one machine type MiniVmm has: no board, no devices.</summary>
    public const string None = "none";
}
