using MiniVmm.Host.Tests.Support;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// Guest RAM ready before the data arrives, on real processes: <c>-mem-prealloc</c>, the
/// background prefault of a destination waiting in <c>inmigrate</c>, and QEMU's
/// <c>memory-backend-memfd</c> (block named after the backend, huge pages) migrated to and from
/// QEMU 7.2. "Allocated" is the process's shared-memory resident size (<c>RssShmem</c>).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RamBackingProcessTests
{
    private const long Ram = 256L << 20;
    private TemporaryDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TemporaryDirectory();

    [TearDown]
    public void RemoveDirectory() => _directory.Dispose();

    [Test]
    public async Task Mem_prealloc_allocates_all_RAM_before_QMP_answers()
    {
        await using Vm vm = await Vm.StartAsync(VmProgram.MiniVmm, _directory, "vm", "-M", "none", "-m", "256M", "-S", "-mem-prealloc");
        Assert.That(await vm.RunStateAsync(), Is.EqualTo("prelaunch"));
        Assert.That(ShmemResident(vm.Process.Pid), Is.GreaterThanOrEqualTo(Ram), "every page is resident once QMP answers");
    }

    [Test]
    public async Task A_waiting_destination_allocates_its_RAM_in_the_background_and_still_loads_the_stream()
    {
        int port = GuestRam.FreeTcpPort();
        await using Vm destination = await Vm.StartAsync(
            VmProgram.MiniVmm, _directory, "dst", "-M", "none", "-m", "256M", "-S", "-incoming", $"tcp:127.0.0.1:{port}");
        await destination.WaitUntilListeningAsync();
        Assert.That(await WaitForAsync(() => ShmemResident(destination.Process.Pid) >= Ram), Is.True,
            $"RAM resident while waiting: {ShmemResident(destination.Process.Pid)} bytes of {Ram}");

        byte[] data = GuestRam.WriteRandomFile(_directory.File("data.bin"), 8 << 20, seed: 12);
        await using Vm source = await Vm.StartAsync(
            VmProgram.MiniVmm, _directory, "src", "-M", "none", "-m", "256M", "-S", "-device", $"loader,file={_directory.File("data.bin")},addr=0x100000");
        await source.MigrateAsync($"tcp:127.0.0.1:{port}");
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        byte[] loaded = await destination.ReadRamAsync(0x100000, data.Length, _directory.File("dst.img"));
        Assert.That(loaded.AsSpan().SequenceEqual(data), Is.True, GuestRam.FirstDifference(data, loaded));
    }

    [Test]
    public async Task With_x_incoming_prefault_off_a_waiting_destination_allocates_nothing()
    {
        int port = GuestRam.FreeTcpPort();
        await using Vm destination = await Vm.StartAsync(
            VmProgram.MiniVmm, _directory, "dst", "-M", "none,x-incoming-prefault=off", "-m", "256M", "-S", "-incoming", $"tcp:127.0.0.1:{port}");
        await destination.WaitUntilListeningAsync();
        await Task.Delay(1000);
        Assert.That(ShmemResident(destination.Process.Pid), Is.LessThan(Ram / 8));
    }

    [TestCase(VmProgram.Qemu, VmProgram.MiniVmm)]
    [TestCase(VmProgram.MiniVmm, VmProgram.Qemu)]
    public async Task A_memfd_backend_migrates_between_QEMU_and_MiniVmm_under_its_own_block_name(VmProgram from, VmProgram to)
    {
        string[] machine =
        [
            "-M", "none,memory-backend=mem0", "-object", "memory-backend-memfd,id=mem0,size=64M,share=on",
            "-m", "64M", "-nodefaults", "-display", "none", "-S",
        ];
        byte[] data = GuestRam.WriteRandomFile(_directory.File("data.bin"), 3 << 20, seed: 13);
        int port = GuestRam.FreeTcpPort();
        await using Vm destination = await Vm.StartAsync(to, _directory, "dst", [.. machine, "-incoming", $"tcp:127.0.0.1:{port}"]);
        await destination.WaitUntilListeningAsync();
        await using Vm source = await Vm.StartAsync(from, _directory, "src", [.. machine, "-device", $"loader,file={_directory.File("data.bin")},addr=0x200000"]);
        await source.MigrateAsync($"tcp:127.0.0.1:{port}");
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();

        byte[] sourceRam = await source.ReadRamAsync(0, 64L << 20, _directory.File("src.img"));
        byte[] destinationRam = await destination.ReadRamAsync(0, 64L << 20, _directory.File("dst.img"));
        Assert.That(sourceRam.AsSpan(0x200000, data.Length).SequenceEqual(data), Is.True, "the source holds the loader's data");
        Assert.That(destinationRam.AsSpan().SequenceEqual(sourceRam), Is.True, GuestRam.FirstDifference(sourceRam, destinationRam));
    }

    [Test]
    public async Task A_destination_named_for_another_block_refuses_the_stream_by_name()
    {
        int port = GuestRam.FreeTcpPort();
        await using Vm destination = await Vm.StartAsync(
            VmProgram.MiniVmm, _directory, "dst",
            "-M", "none,memory-backend=mem0", "-object", "memory-backend-memfd,id=mem0,size=64M", "-S", "-incoming", $"tcp:127.0.0.1:{port}");
        await destination.WaitUntilListeningAsync();
        await using Vm source = await Vm.StartAsync(VmProgram.MiniVmm, _directory, "src", "-M", "none", "-m", "64M", "-S");
        await source.MigrateAsync($"tcp:127.0.0.1:{port}");
        Assert.That(await ((MiniVmmProcess)destination.Process).WaitForExitAsync(), Is.EqualTo(1), "a failed load ends the destination, as in QEMU");
        Assert.That(((MiniVmmProcess)destination.Process).Stderr, Does.Contain("Unknown ramblock \"ram\", cannot accept migration"));
    }

    [Test]
    public async Task A_huge_page_backed_VM_migrates_between_two_MiniVmm_processes()
    {
        using HugePageReservation pool = HugePageReservation.Ensure(2 * 32);
        string[] machine = ["-M", "none,memory-backend=mem0", "-object", "memory-backend-memfd,id=mem0,size=64M,hugetlb=on,hugetlbsize=2M", "-S"];
        byte[] data = GuestRam.WriteRandomFile(_directory.File("data.bin"), 3 << 20, seed: 14);
        int port = GuestRam.FreeTcpPort();
        await using Vm destination = await Vm.StartAsync(VmProgram.MiniVmm, _directory, "dst", [.. machine, "-incoming", $"tcp:127.0.0.1:{port}"]);
        await destination.WaitUntilListeningAsync();
        await using Vm source = await Vm.StartAsync(VmProgram.MiniVmm, _directory, "src", [.. machine, "-device", $"loader,file={_directory.File("data.bin")},addr=0x200000"]);
        await source.MigrateAsync($"tcp:127.0.0.1:{port}");
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        byte[] loaded = await destination.ReadRamAsync(0x200000, data.Length, _directory.File("dst.img"));
        Assert.That(loaded.AsSpan().SequenceEqual(data), Is.True, GuestRam.FirstDifference(data, loaded));
        Assert.That(HugePagesInUseBy(destination.Process.Pid), Is.True, "the destination's RAM is on huge pages");
    }

    [Test]
    public async Task Huge_pages_that_are_not_reserved_fail_at_start_with_one_line()
    {
        using HugePageReservation pool = HugePageReservation.Ensure(0);
        long free = pool.Free;
        await using MiniVmmProcess vm = MiniVmmProcess.Start(
            "run", "-M", "none,memory-backend=mem0", "-object", $"memory-backend-memfd,id=mem0,size={(free + 8) * 2}M,hugetlb=on", "-S");
        Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(1));
        string[] lines = vm.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), vm.Stderr);
        Assert.That(lines[0], Does.StartWith("minivmm: RAM block 'mem0': unable to map backing store for guest RAM"));
    }

    private static long ShmemResident(int pid) =>
        File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("RssShmem:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) << 10).FirstOrDefault();

    private static bool HugePagesInUseBy(int pid) =>
        File.ReadAllText($"/proc/{pid}/smaps").Contains("/memfd:ram:mem0 (deleted)", StringComparison.Ordinal)
        && File.ReadLines($"/proc/{pid}/smaps").Any(l => l.Contains("_Hugetlb:", StringComparison.Ordinal) && !l.Contains(" 0 kB", StringComparison.Ordinal));

    private static async Task<bool> WaitForAsync(Func<bool> condition)
    {
        for (int i = 0; i < 1200 && !condition(); i++)
        {
            await Task.Delay(100);
        }

        return condition();
    }
}
