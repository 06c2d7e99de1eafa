using System.Text.Json.Nodes;
using MiniVmm.Host.Tests.Support;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>
/// RAM wire compatibility with QEMU 7.2 (Debian's qemu-system-x86_64): streams go from QEMU to
/// MiniVmm and back, through files (<c>exec:</c>) and TCP, with the same command lines for both
/// programs; the destination's <c>pmemsave</c> must equal the source's byte for byte.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class QemuInteropProcessTests
{
    private const long Ram64M = 64L << 20;
    private const long Ram1G = 1L << 30;
    private const long FirstLoaderAddress = 0x200000;
    private const long SecondLoaderAddress = 0x3f00000;
    private static string FixtureDirectory => QemuFixtures.Qemu72;
    private const string FixtureRamSha256 = "20ef06653be7e72abe8a38f8f551fe57ba90e2b31df7fcccf0493cbefc7ab321";

    private TemporaryDirectory _directory = null!;
    private byte[] _first = null!;
    private byte[] _second = null!;

    [SetUp]
    public void CreateDirectory()
    {
        _directory = new TemporaryDirectory();
        _first = GuestRam.WriteRandomFile(_directory.File("first.bin"), 3 << 20, seed: 72);
        _second = GuestRam.WriteRandomFile(_directory.File("second.bin"), 64 << 10, seed: 73);
    }

    [TearDown]
    public void RemoveDirectory() => _directory.Dispose();

    /// <summary>The machine both programs run: <c>-M none -m SIZE -nodefaults -display none</c>, optionally <c>-S</c>.</summary>
    private static string[] Machine(string memory, bool paused) =>
        ["-M", "none", "-m", memory, "-nodefaults", "-display", "none", .. paused ? new[] { "-S" } : []];

    private string[] Loaders =>
    [
        "-device", $"loader,file={_directory.File("first.bin")},addr=0x{FirstLoaderAddress:x}",
        "-device", $"loader,file={_directory.File("second.bin")},addr=0x{SecondLoaderAddress:x}",
    ];

    /// <summary>An exec URI that writes the stream to <paramref name="file"/> and renames it into place when complete.</summary>
    private static string ExecToFile(string file) => $"exec:cat > {file}.part && mv {file}.part {file}";

    [Test]
    public async Task Qemu_stream_through_exec_loads_into_MiniVmm_with_identical_ram()
    {
        string stream = _directory.File("qemu.stream");
        byte[] sourceRam;
        await using (Vm qemu = await Vm.StartAsync(VmProgram.Qemu, _directory, "src", [.. Machine("64M", paused: true), .. Loaders]))
        {
            await qemu.MigrateAsync(ExecToFile(stream));
            await qemu.WaitForCompletedAsync();
            await GuestRam.WaitForFileAsync(stream, Vm.LongWait);
            Assert.That(await qemu.RunStateAsync(), Is.EqualTo("postmigrate"));
            sourceRam = await qemu.ReadRamAsync(0, Ram64M, _directory.File("src.img"));
        }

        AssertHoldsLoaderData(sourceRam, "QEMU's own RAM");
        await using Vm minivmm = await Vm.StartAsync(
            VmProgram.MiniVmm, _directory, "dst", [.. Machine("64M", paused: true), "-incoming", $"exec:cat {stream}"]);
        await minivmm.WaitForCompletedAsync();
        byte[] destinationRam = await minivmm.ReadRamAsync(0, Ram64M, _directory.File("dst.img"));

        Assert.That(destinationRam.AsSpan().SequenceEqual(sourceRam), Is.True, GuestRam.FirstDifference(sourceRam, destinationRam));
        Assert.That(await minivmm.RunStateAsync(), Is.EqualTo("prelaunch"));
    }

    [Test]
    public async Task The_QEMU_fixture_stream_loads_into_MiniVmm_with_the_documented_ram()
    {
        string fixture = Path.Combine(FixtureDirectory, "ram-64m-pattern.bin");
        await using Vm minivmm = await Vm.StartAsync(
            VmProgram.MiniVmm, _directory, "dst", [.. Machine("64M", paused: true), "-incoming", $"exec:cat {fixture}"]);
        await minivmm.WaitForCompletedAsync();
        string image = _directory.File("dst.img");
        await minivmm.PmemsaveAsync(0, Ram64M, image);

        Assert.That(await GuestRam.Sha256Async(image), Is.EqualTo(FixtureRamSha256));
        Assert.That(await minivmm.RunStateAsync(), Is.EqualTo("prelaunch"));
    }

    [Test]
    public async Task MiniVmm_stream_through_exec_loads_into_QEMU_without_a_word_on_stderr()
    {
        string stream = _directory.File("minivmm.stream");
        byte[] sourceRam;
        await using (Vm minivmm = await Vm.StartAsync(VmProgram.MiniVmm, _directory, "src", [.. Machine("64M", paused: true), .. Loaders]))
        {
            await minivmm.MigrateAsync(ExecToFile(stream));
            await minivmm.WaitForCompletedAsync();
            await GuestRam.WaitForFileAsync(stream, Vm.LongWait);
            sourceRam = await minivmm.ReadRamAsync(0, Ram64M, _directory.File("src.img"));
        }

        AssertHoldsLoaderData(sourceRam, "MiniVmm's own RAM");
        await using Vm qemu = await Vm.StartAsync(VmProgram.Qemu, _directory, "dst", [.. Machine("64M", paused: true), "-incoming", "defer"]);
        await qemu.ReturnOfAsync("migrate-incoming", new() { ["uri"] = $"exec:cat {stream}" });
        await qemu.WaitForCompletedAsync();
        byte[] destinationRam = await qemu.ReadRamAsync(0, Ram64M, _directory.File("dst.img"));
        string? runState = await qemu.RunStateAsync();
        int exit = await qemu.QuitAsync();

        Assert.Multiple(() =>
        {
            Assert.That(destinationRam.AsSpan().SequenceEqual(sourceRam), Is.True, GuestRam.FirstDifference(sourceRam, destinationRam));
            Assert.That(runState, Is.EqualTo("prelaunch"));
            Assert.That(exit, Is.EqualTo(0));
            Assert.That(qemu.Process.Stderr, Is.Empty);
        });
    }

    [Test]
    public async Task One_GiB_of_random_ram_goes_QEMU_to_MiniVmm_to_QEMU_unchanged()
    {
        // The loader fills all of RAM: its hash is the expected hash of every pmemsave.
        string loader = _directory.File("big.bin");
        string expected = GuestRam.WriteLargeRandomFile(loader, Ram1G, seed: 1024);
        string[] machine = Machine("1G", paused: true);
        JsonObject Fast() => new() { ["max-bandwidth"] = 8L << 30 };

        // QEMU → file → MiniVmm.
        string first = _directory.File("qemu.stream");
        await using (Vm qemu = await Vm.StartAsync(VmProgram.Qemu, _directory, "src", [.. machine, "-device", $"loader,file={loader},addr=0"]))
        {
            await qemu.SetParametersAsync(Fast());
            await qemu.MigrateAsync(ExecToFile(first));
            TestContext.Out.WriteLine($"QEMU -> file: {(await qemu.WaitForCompletedAsync()).ToJsonString()}");
            await GuestRam.WaitForFileAsync(first, Vm.LongWait);
            Assert.That(await HashRamAsync(qemu, Ram1G), Is.EqualTo(expected), "QEMU's own RAM is not the loader file");
        }

        File.Delete(loader);
        await using Vm minivmm = await Vm.StartAsync(VmProgram.MiniVmm, _directory, "mid", [.. machine, "-incoming", $"exec:cat {first}"]);
        await minivmm.WaitForCompletedAsync();
        File.Delete(first);
        Assert.That(await HashRamAsync(minivmm, Ram1G), Is.EqualTo(expected), "MiniVmm's RAM after loading QEMU's stream");

        // MiniVmm → file → QEMU.
        string second = _directory.File("minivmm.stream");
        await minivmm.SetParametersAsync(Fast());
        await minivmm.MigrateAsync(ExecToFile(second));
        TestContext.Out.WriteLine($"MiniVmm -> file: {(await minivmm.WaitForCompletedAsync()).ToJsonString()}");
        await GuestRam.WaitForFileAsync(second, Vm.LongWait);

        await using Vm back = await Vm.StartAsync(VmProgram.Qemu, _directory, "dst", [.. machine, "-incoming", $"exec:cat {second}"]);
        await back.WaitForCompletedAsync();
        File.Delete(second);
        Assert.That(await HashRamAsync(back, Ram1G), Is.EqualTo(expected), "QEMU's RAM after loading MiniVmm's stream");
        Assert.That(await back.RunStateAsync(), Is.EqualTo("prelaunch"));
        Assert.That(back.Process.Stderr, Is.Empty);
    }

    [TestCase(VmProgram.Qemu, VmProgram.MiniVmm)]
    [TestCase(VmProgram.MiniVmm, VmProgram.Qemu)]
    public async Task Running_idle_vm_migrates_over_tcp(VmProgram from, VmProgram to)
    {
        int port = GuestRam.FreeTcpPort();
        string[] machine = Machine("64M", paused: false);
        await using Vm destination = await Vm.StartAsync(to, _directory, "dst", [.. machine, "-incoming", $"tcp:127.0.0.1:{port}"]);
        await destination.WaitUntilListeningAsync();
        await using Vm source = await Vm.StartAsync(from, _directory, "src", [.. machine, .. Loaders]);
        Assert.That(await source.RunStateAsync(), Is.EqualTo("running"));

        await source.MigrateAsync($"tcp:127.0.0.1:{port}");
        await source.WaitForCompletedAsync();
        await destination.WaitForCompletedAsync();
        await destination.WaitForRunStateAsync("running");
        byte[] sourceRam = await source.ReadRamAsync(0, Ram64M, _directory.File("src.img"));
        byte[] destinationRam = await destination.ReadRamAsync(0, Ram64M, _directory.File("dst.img"));

        AssertHoldsLoaderData(sourceRam, $"{from}'s own RAM");
        Assert.Multiple(async () =>
        {
            Assert.That(destinationRam.AsSpan().SequenceEqual(sourceRam), Is.True, GuestRam.FirstDifference(sourceRam, destinationRam));
            Assert.That(await source.RunStateAsync(), Is.EqualTo("postmigrate"));
            Assert.That((from == VmProgram.Qemu ? source : destination).Process.Stderr, Is.Empty, "QEMU's stderr");
        });
    }

    private void AssertHoldsLoaderData(byte[] ram, string what)
    {
        Assert.That(ram.AsSpan((int)FirstLoaderAddress, _first.Length).SequenceEqual(_first), Is.True, $"{what}: the first loader's data is missing");
        Assert.That(ram.AsSpan((int)SecondLoaderAddress, _second.Length).SequenceEqual(_second), Is.True, $"{what}: the second loader's data is missing");
    }

    private async Task<string> HashRamAsync(Vm vm, long size)
    {
        string image = _directory.File($"{vm.Name}.img");
        await vm.PmemsaveAsync(0, size, image);
        string hash = await GuestRam.Sha256Async(image);
        File.Delete(image);
        return hash;
    }
}
