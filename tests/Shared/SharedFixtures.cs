namespace MiniVmm.Tests.Shared;

/// <summary>
/// Finds <c>../shared/fixtures/qemu-7.2</c> beside the checkout, wherever the checkout is (a
/// developer's tree or CI's fresh clone): the first ancestor of the test directory that has a
/// <c>shared/fixtures/qemu-7.2</c> folder. One source file, linked into each test project that
/// reads the fixtures.
/// </summary>
internal static class SharedFixtures
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
            string candidate = Path.Combine(directory.FullName, "shared", "fixtures", "qemu-7.2");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException(
            $"no shared/fixtures/qemu-7.2 above {AppContext.BaseDirectory}: the tests expect ../shared beside the checkout");
    }
}
