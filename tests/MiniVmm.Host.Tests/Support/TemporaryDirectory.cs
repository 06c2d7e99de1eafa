namespace MiniVmm.Host.Tests.Support;

/// <summary>A fresh directory under /tmp (short enough for UNIX socket paths), deleted when disposed.</summary>
public sealed class TemporaryDirectory : IDisposable
{
    /// <summary>Creates the directory.</summary>
    public TemporaryDirectory() => Path = Directory.CreateTempSubdirectory("minivmm-t-").FullName;

    /// <summary>The directory.</summary>
    public string Path { get; }

    /// <summary>A path inside the directory.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <inheritdoc/>
    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory does not fail a test.
        }
    }
}
