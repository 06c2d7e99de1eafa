using MiniVmm.Migration.Ram;

namespace MiniVmm.Host.Guest;

/// <summary>
/// QEMU migration-test's memory check for the incrementing guest: reading the first byte of
/// each page from 1 MiB up, every page equals the previous one except at most one place where
/// it is exactly one less (mod 256) — where the guest was when it stopped. Anything else means
/// a page was lost or duplicated by the migration.
/// </summary>
public static class GuestMemoryConsistency
{
    /// <summary>The result of a check.</summary>
    /// <param name="Consistent">Whether the memory passes.</param>
    /// <param name="Steps">How many one-less steps were found (0 or 1 when consistent).</param>
    /// <param name="FirstBadAddress">The first address that broke the rule, or -1.</param>
    /// <param name="Description">A sentence for people.</param>
    public sealed record Result(bool Consistent, int Steps, long FirstBadAddress, string Description);

    /// <summary>Checks the first block of <paramref name="memory"/>.</summary>
    public static Result Check(GuestMemory memory)
    {
        RamBlock block = memory.Blocks[0];
        long first = DirtyingGuest.StartAddress >> RamBlock.PageShift;
        byte last = block.GetSpan(first << RamBlock.PageShift, 1)[0];
        int steps = 0;
        for (long page = first + 1; page < block.PageCount; page++)
        {
            byte current = block.GetSpan(page << RamBlock.PageShift, 1)[0];
            if (current == last)
            {
                continue;
            }

            long address = page << RamBlock.PageShift;
            if ((byte)(last - 1) == current && steps == 0)
            {
                steps = 1;
                last = current;
                continue;
            }

            return new Result(false, steps + 1, address,
                $"page 0x{address:x} holds 0x{current:x2} after 0x{last:x2}{(steps > 0 ? " (a second step)" : "")}");
        }

        return new Result(true, steps, -1,
            $"consistent: {block.PageCount - first} pages from 0x{DirtyingGuest.StartAddress:x}, first byte 0x{block.GetSpan(first << RamBlock.PageShift, 1)[0]:x2}, {steps} step");
    }
}
