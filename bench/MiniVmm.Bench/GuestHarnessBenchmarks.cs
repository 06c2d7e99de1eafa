using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.GuestHarness;
using MiniVmm.GuestHarness.Connection;
using MiniVmm.Migration.Ram;
using MiniVmm.Runstate;

namespace MiniVmm.Bench;

/// <summary>
/// The guest-harness path with the real Rust reference harness (<c>harness/target/release/dirty-guest</c>,
/// build it first with <c>cargo build --offline --release</c> in <c>harness/</c>) writing 1 GiB of
/// memfd RAM as fast as it can, attached to an in-process VM:
/// <list type="bullet">
/// <item><see cref="PauseThenRun"/>: PAUSE and its reply (all vCPU threads parked, every write
/// marked), then RUN and its reply: the protocol round trips a switchover adds;</item>
/// <item><see cref="StopThenCont"/>: a whole VM stop (change-state handlers, STOP event) and start
/// (start checks, RESUME) with the harness attached;</item>
/// <item><see cref="HarvestDirtyLogOf1GiB"/> (in <see cref="GuestHarnessHarvestBenchmarks"/>): the
/// atomic harvest of a dirty log the harness filled.</item>
/// </list>
/// </summary>
public class GuestHarnessBenchmarks
{
    private HarnessRig _rig = null!;

    /// <summary>Starts the VM and the harness process.</summary>
    [GlobalSetup]
    public void Setup() => _rig = HarnessRig.Start(1L << 30);

    /// <summary>Stops everything.</summary>
    [GlobalCleanup]
    public void Cleanup() => _rig.Dispose();

    /// <summary>PAUSE → reply, RUN → reply, on the running harness.</summary>
    [Benchmark]
    public void PauseThenRun()
    {
        HarnessConnection connection = _rig.Guest.Connection!;
        connection.Pause();
        connection.Run();
    }

    /// <summary>vm_stop(paused) and vm_start, each with the big lock, the harness attached.</summary>
    [Benchmark]
    public void StopThenCont()
    {
        using BigLock.Scope held = _rig.Vm.Bql.Acquire();
        _rig.Vm.Stop(RunState.Paused).ThrowIfFailed();
        _rig.Vm.Start().ThrowIfFailed();
    }
}

/// <summary>
/// One PAUSE round trip alone, the part a switchover adds to the downtime: before each
/// operation the harness is sent RUN (not timed), then the operation is PAUSE until its reply.
/// One invocation per iteration and many iterations, so the median is the median round trip.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 20, iterationCount: 300, invocationCount: 1)]
public class GuestHarnessPauseBenchmarks
{
    private HarnessRig _rig = null!;

    /// <summary>Starts the VM and the harness process.</summary>
    [GlobalSetup]
    public void Setup() => _rig = HarnessRig.Start(1L << 30);

    /// <summary>Stops everything.</summary>
    [GlobalCleanup]
    public void Cleanup() => _rig.Dispose();

    /// <summary>Lets the harness run again (its vCPU busy writing) before the next PAUSE.</summary>
    [IterationSetup]
    public void Run() => _rig.Guest.Connection!.Run();

    /// <summary>PAUSE → reply: every vCPU thread parked, every write marked.</summary>
    [Benchmark]
    public void Pause() => _rig.Guest.Connection!.Pause();
}

/// <summary>
/// Harvesting the dirty log of 1 GiB that the Rust harness wrote: before each operation the
/// harness runs until it has marked every page, then is paused; the operation takes every bit
/// with the same atomic harvest the RAM handler uses.
/// </summary>
public class GuestHarnessHarvestBenchmarks
{
    private HarnessRig _rig = null!;
    private ulong[] _target = [];

    /// <summary>Starts the VM and the harness process.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _rig = HarnessRig.Start(1L << 30);
        _target = new ulong[_rig.Memory.Blocks[0].DirtyBitmap.WordCount];
    }

    /// <summary>Stops everything.</summary>
    [GlobalCleanup]
    public void Cleanup() => _rig.Dispose();

    /// <summary>Lets the harness mark the whole 1 GiB again, then pauses it.</summary>
    [IterationSetup]
    public void Dirty()
    {
        DirtyBitmap log = _rig.Memory.Blocks[0].DirtyBitmap;
        using (_rig.Vm.Bql.Acquire())
        {
            _rig.Vm.Start().ThrowIfFailed();
        }

        var clock = Stopwatch.StartNew();
        while (log.CountDirty() < log.PageCount - 256 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            Thread.Sleep(5);
        }

        using (_rig.Vm.Bql.Acquire())
        {
            _rig.Vm.Stop(RunState.Paused).ThrowIfFailed();
        }

        Array.Clear(_target);
    }

    /// <summary>Every dirty bit of 1 GiB, taken atomically.</summary>
    [Benchmark]
    [InvocationCount(1)]
    public long HarvestDirtyLogOf1GiB() => _rig.Memory.Blocks[0].DirtyBitmap.HarvestInto(_target);
}

/// <summary>An in-process VM with RAM and a <see cref="HarnessGuest"/>, and the Rust harness process attached and running.</summary>
internal sealed class HarnessRig : IDisposable
{
    private readonly DirectoryInfo _directory;
    private readonly Process _harness;

    private HarnessRig(DirectoryInfo directory, VirtualMachine vm, GuestMemory memory, HarnessGuest guest, Process harness)
    {
        _directory = directory;
        Vm = vm;
        Memory = memory;
        Guest = guest;
        _harness = harness;
    }

    public VirtualMachine Vm { get; }

    public GuestMemory Memory { get; }

    public HarnessGuest Guest { get; }

    public static HarnessRig Start(long ramBytes)
    {
        DirectoryInfo directory = Directory.CreateTempSubdirectory("minivmm-harness-bench-");
        string socket = Path.Combine(directory.FullName, "h.sock");
        var vm = new VirtualMachine();
        GuestMemory memory = GuestMemory.ForMachineNone(ramBytes);
        var guest = new HarnessGuest(
            new HarnessGuestOptions(socket, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)), memory, vm, _ => { },
            NullLogger<HarnessGuest>.Instance);
        Process harness = Process.Start(new ProcessStartInfo(LocateBinary()) { ArgumentList = { "--socket", socket } })
            ?? throw new InvalidOperationException("the harness did not start");
        using (vm.Bql.Acquire())
        {
            vm.Start().ThrowIfFailed();
        }

        return new HarnessRig(directory, vm, memory, guest, harness);
    }

    public void Dispose()
    {
        Guest.Dispose();
        if (!_harness.WaitForExit(TimeSpan.FromSeconds(5)))
        {
            _harness.Kill();
        }

        Memory.Dispose();
        _directory.Delete(recursive: true);
    }

    private static string LocateBinary()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "harness", "target", "release", "dirty-guest");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("no harness/target/release/dirty-guest above the benchmark: run `cargo build --offline --release` in harness/");
    }
}
