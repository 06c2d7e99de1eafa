using System.Diagnostics;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.VMState;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Guest;

/// <summary>
/// <c>-guest dirty[,rate=PAGES_PER_SECOND]</c>: a vCPU-like thread that writes guest RAM the
/// way QEMU's migration-test guest does: it increments the first byte of every 4 KiB page from
/// 1 MiB up to the end of RAM, page after page, round after round, marking each page dirty,
/// at the given rate or as fast as it can. It runs only while the VM runs: a stop waits until
/// the thread is parked (as pausing vCPUs does), so nothing is written while the VM is stopped.
/// Where the guest is (its "vCPU state": the next page to write) migrates in the section
/// <c>x-dirty-guest</c>, so a destination started with the same <c>-guest</c> option carries on
/// exactly where the source stopped.
/// </summary>
public sealed class DirtyingGuest : IDisposable, ISaveStateDevice
{
    private static readonly VMStateDescription<DirtyingGuest> Description =
        VMStateDescription<DirtyingGuest>.Build("x-dirty-guest", version: 1, minimumVersion: 1)
            .UInt64("next-page", guest => ref guest._nextPage)
            .PostLoad((guest, _) => guest.CheckPosition())
            .Done();

    /// <summary>Where the guest starts writing (QEMU's test guest leaves the first MiB alone).</summary>
    public const long StartAddress = 1 << 20;

    private const int PagesPerBatch = 64;
    private const double ThrottleSliceMs = 10;

    private readonly RamBlock _block;
    private readonly VirtualMachine _vm;
    private readonly long _pagesPerSecond;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Stopwatch _slice = Stopwatch.StartNew();
    private readonly VmBoundWorker _vcpu;
    private long _pacedPages;
    private double _throttleDebtMs;
    private long _pagesWritten;
    private ulong _nextPage = StartAddress >> RamBlock.PageShift;

    /// <summary>Creates the guest on <paramref name="memory"/>'s first block, parked until the VM runs.</summary>
    public DirtyingGuest(GuestMemory memory, VirtualMachine vm, long pagesPerSecond)
    {
        _block = memory.Blocks.FirstOrDefault(b => b.GuestAddress == 0 && b.UsedLength > StartAddress)
            ?? throw new ArgumentException($"-guest dirty needs more than {StartAddress >> 20} MiB of RAM at address 0");
        _pagesPerSecond = pagesPerSecond;
        _vm = vm;
        _vcpu = new VmBoundWorker(vm, "vcpu0 (dirty guest)", WriteBatch, RestartPacing);
    }

    /// <summary>The VMState description of the guest's position (for conformance checks).</summary>
    public static VMStateDescription<DirtyingGuest> Vmsd => Description;

    /// <inheritdoc />
    public void Register(SaveStateRegistry registry) => registry.RegisterVMState(Description, this, instanceId: 0);

    /// <summary>How many page writes the guest has done.</summary>
    public long PagesWritten => Interlocked.Read(ref _pagesWritten);

    /// <summary>After a stop the pace starts again from now: the time parked owes no pages.</summary>
    private void RestartPacing()
    {
        _clock.Restart();
        _pacedPages = 0;
    }

    /// <summary>One batch of page writes, then the throttle and the pacing; on the vCPU thread while the VM runs.</summary>
    private void WriteBatch()
    {
        if (_throttleDebtMs > 0 && _vm.CpuThrottlePercentage == 0)
        {
            _throttleDebtMs = 0; // the migration ended: the throttle is off
        }

        if (_throttleDebtMs > 0)
        {
            // Paid in naps of at most a slice, so that a stop parks the vCPU promptly.
            long napStart = Stopwatch.GetTimestamp();
            Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(_throttleDebtMs, ThrottleSliceMs)));
            _throttleDebtMs -= Stopwatch.GetElapsedTime(napStart).TotalMilliseconds;
            if (_throttleDebtMs <= 0)
            {
                _throttleDebtMs = 0;
                _slice.Restart();
                RestartPacing();
            }

            return;
        }

        long firstPage = StartAddress >> RamBlock.PageShift;
        long endPage = _block.PageCount;

        // Parked while the VM is stopped, so a save or load of _nextPage never races this.
        long page = (long)_nextPage;
        for (int i = 0; i < PagesPerBatch; i++)
        {
            Span<byte> first = _block.GetSpan(page << RamBlock.PageShift, 1);
            first[0]++;
            _block.DirtyBitmap.Mark(page);
            if (++page == endPage)
            {
                page = firstPage;
            }
        }

        _nextPage = (ulong)page;

        Interlocked.Add(ref _pagesWritten, PagesPerBatch);
        int throttle = _vm.CpuThrottlePercentage;
        double ran = _slice.Elapsed.TotalMilliseconds;
        if (throttle == 0)
        {
            _slice.Restart();
        }
        else if (ran >= ThrottleSliceMs * (100 - throttle) / 100)
        {
            // Auto-converge: the vCPU is off for the throttled share of the time, as QEMU's
            // throttle timer makes every vCPU do: what it ran (its pacing sleeps included, which
            // are guest time too) earns ran × p / (100 - p) off.
            _throttleDebtMs = ran * throttle / (100.0 - throttle);
            return;
        }

        _pacedPages += PagesPerBatch;
        if (_pagesPerSecond > 0)
        {
            double due = _pacedPages * 1000.0 / _pagesPerSecond;
            double ahead = due - _clock.Elapsed.TotalMilliseconds;
            if (ahead >= 1)
            {
                Thread.Sleep(TimeSpan.FromMilliseconds(ahead));
            }
        }
    }

    private void CheckPosition()
    {
        long first = StartAddress >> RamBlock.PageShift;
        if (_nextPage < (ulong)first || _nextPage >= (ulong)_block.PageCount)
        {
            throw new InvalidDataException(
                $"x-dirty-guest: next page {_nextPage} is outside this guest's pages {first}..{_block.PageCount - 1}");
        }
    }

    /// <inheritdoc />
    public void Dispose() => _vcpu.Dispose();
}
