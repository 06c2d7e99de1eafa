namespace MiniVmm.Tests.Shared;

/// <summary>
/// Finds the QEMU 7.2 fixtures inside the checkout, <c>tests/fixtures/qemu-7.2</c>, wherever the
/// checkout is (a developer's tree or CI's fresh clone): the first ancestor of the test directory
/// that holds <c>MiniVmm.sln</c> is the repository root. One source file, linked into each test
/// project that reads the fixtures; <c>tests/fixtures/regenerate.sh</c> rebuilds them with QEMU.
/// </summary>
internal static class QemuFixtures
{
    private static readonly Lazy<string> Qemu72Directory = new(Locate);

    /// <summary>The folder with QEMU 7.2's fixture stream and loader inputs.</summary>
    public static string Qemu72 => Qemu72Directory.Value;

    /// <summary>The 64 MiB fixture stream QEMU 7.2 wrote.</summary>
    public static string Qemu72Stream => Path.Combine(Qemu72, "ram-64m-pattern.bin");

    private static string Locate()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "MiniVmm.sln")))
            {
                string fixtures = Path.Combine(directory.FullName, "tests", "fixtures", "qemu-7.2");
                return Directory.Exists(fixtures)
                    ? fixtures
                    : throw new DirectoryNotFoundException($"the checkout at {directory.FullName} has no tests/fixtures/qemu-7.2");
            }
        }

        throw new DirectoryNotFoundException($"no MiniVmm.sln above {AppContext.BaseDirectory}: the tests run from inside the checkout");
    }
}
