using NUnit.Framework;

namespace MiniVmm.Tests.Shared;

/// <summary>
/// Makes sure the host has some free 2 MiB huge pages for a test, reserving them as root
/// through <c>/proc/sys/vm/nr_hugepages</c> and giving the reservation back afterwards. Where
/// that is not possible (not root, no hugetlbfs, no free memory) the test is ignored with the reason.
/// One source file, linked into each test project that needs huge pages.
/// </summary>
internal sealed class HugePageReservation : IDisposable
{
    private const string PoolFile = "/proc/sys/vm/nr_hugepages";
    private readonly long _original;
    private readonly bool _changed;

    private HugePageReservation(long original, bool changed, long free)
    {
        _original = original;
        _changed = changed;
        Free = free;
    }

    /// <summary>Free huge pages once reserved.</summary>
    public long Free { get; }

    public static HugePageReservation Ensure(long pages)
    {
        if (!File.Exists(PoolFile) || ReadMeminfo("Hugepagesize:") != 2048)
        {
            Assert.Ignore("this host has no 2 MiB huge pages (no /proc/sys/vm/nr_hugepages or another default size)");
        }

        long original = long.Parse(File.ReadAllText(PoolFile).Trim());
        long free = ReadMeminfo("HugePages_Free:");
        if (free >= pages)
        {
            return new HugePageReservation(original, changed: false, free);
        }

        try
        {
            File.WriteAllText(PoolFile, (original + pages - free).ToString());
        }
        catch (Exception error) when (error is UnauthorizedAccessException or IOException)
        {
            Assert.Ignore($"cannot reserve {pages} huge pages ({error.Message}): run as root to test huge pages");
        }

        free = ReadMeminfo("HugePages_Free:");
        if (free < pages)
        {
            File.WriteAllText(PoolFile, original.ToString());
            Assert.Ignore($"the kernel reserved only {free} of {pages} huge pages (memory too fragmented)");
        }

        return new HugePageReservation(original, changed: true, free);
    }

    public void Dispose()
    {
        if (_changed)
        {
            File.WriteAllText(PoolFile, _original.ToString());
        }
    }

    private static long ReadMeminfo(string key) =>
        File.ReadLines("/proc/meminfo").Where(l => l.StartsWith(key, StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1])).FirstOrDefault();
}
