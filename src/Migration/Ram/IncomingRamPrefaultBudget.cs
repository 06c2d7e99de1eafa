namespace MiniVmm.Migration.Ram;

/// <summary>
/// The memory limit of <see cref="IncomingRamPrefault"/>: it stops before the host's available
/// memory would drop below <see cref="MemoryReserveBytes"/>.
/// </summary>
public sealed record IncomingRamPrefaultBudget
{
    /// <summary>Keeps 512 MiB available, read from <c>MemAvailable</c> in <c>/proc/meminfo</c>.</summary>
    public static IncomingRamPrefaultBudget Default { get; } = new();

    /// <summary>The available memory the prefault leaves to the host.</summary>
    public long MemoryReserveBytes { get; init; } = 512L << 20;

    /// <summary>Reads the host's available memory in bytes; null when it cannot be read (no limit is applied then).</summary>
    public Func<long?> AvailableMemoryBytes { get; init; } = ReadMemAvailable;

    private static long? ReadMemAvailable()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                {
                    string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return parts.Length >= 2 && long.TryParse(parts[1], out long kib) ? kib << 10 : null;
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }
}
