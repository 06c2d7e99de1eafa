using MiniVmm.Native;

namespace MiniVmm.Migration.Ram;

/// <summary>
/// Allocates every page of a block before it is used (QEMU's <c>-mem-prealloc</c> and
/// <c>prealloc=on</c>): the block is cut in <see cref="Step"/> ranges that worker threads take
/// in turn and populate with MADV_POPULATE_WRITE (one write per page where the kernel lacks it).
/// Runs on the calling thread plus <c>threads - 1</c> more, and returns when all is allocated.
/// </summary>
internal static class RamPreallocation
{
    /// <summary>How much one populate call covers.</summary>
    public const long Step = 2 << 20;

    /// <exception cref="RamBackingException">The host could not provide the memory; names the block and offset.</exception>
    public static void Run(RamBlock block, int threads)
    {
        long steps = (block.UsedLength + Step - 1) / Step;
        long next = -1;
        Exception? failure = null;
        void Work()
        {
            try
            {
                for (long step = Interlocked.Increment(ref next); step < steps && Volatile.Read(ref failure) is null;
                     step = Interlocked.Increment(ref next))
                {
                    Populate(block, step * Step, Math.Min(Step, block.UsedLength - step * Step));
                }
            }
            catch (Exception error)
            {
                Interlocked.CompareExchange(ref failure, error, null);
            }
        }

        var workers = new Thread[Math.Clamp(threads, 1, 64) - 1];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = new Thread(Work) { Name = $"ram prealloc {i + 1}", IsBackground = true };
            workers[i].Start();
        }

        Work();
        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        if (failure is not null)
        {
            throw failure as RamBackingException
                ?? new RamBackingException($"RAM block '{block.IdStr}': preallocation failed: {failure.Message}", failure);
        }

        block.Populated.ClaimAll();
    }

    private static void Populate(RamBlock block, long offset, long length)
    {
        bool populated;
        try
        {
            populated = block.Populate(offset, length);
        }
        catch (NativeCallException error)
        {
            throw new RamBackingException(
                $"RAM block '{block.IdStr}': preallocation failed at offset 0x{offset:x}: {error.Reason}", error);
        }

        if (!populated)
        {
            // No MADV_POPULATE_WRITE: one write per page allocates it (the block is still all zero).
            Span<byte> range = block.GetSpan(offset, (int)length);
            for (int page = 0; page < range.Length; page += RamBlock.PageSize)
            {
                range[page] = 0;
            }
        }
    }
}
