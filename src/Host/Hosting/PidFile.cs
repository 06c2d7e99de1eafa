namespace MiniVmm.Host.Hosting;

/// <summary><c>-pidfile</c>: the process id written to a file for as long as the process runs.</summary>
public sealed class PidFile : IDisposable
{
    private readonly string _path;
    private int _removed;

    private PidFile(string path) => _path = path;

    /// <summary>Writes the current process id and a newline to <paramref name="path"/>.</summary>
    /// <exception cref="PidFileException">The file cannot be written.</exception>
    public static PidFile Create(string path)
    {
        try
        {
            File.WriteAllText(path, $"{Environment.ProcessId}\n");
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new PidFileException($"cannot create PID file {path}: {error.Message}", error);
        }

        return new PidFile(path);
    }

    /// <summary>Removes the file.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _removed, 1) == 0)
        {
            try
            {
                File.Delete(_path);
            }
            catch (Exception error) when (error is IOException or UnauthorizedAccessException)
            {
                // Leaving a stale pid file behind is harmless; failing the exit is not.
            }
        }
    }
}
