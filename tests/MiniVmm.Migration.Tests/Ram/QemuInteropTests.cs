using System.Security.Cryptography;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>Migration between MiniVmm and a real QEMU 7.2 process, both directions, through files.</summary>
[NonParallelizable]
public sealed class QemuInteropTests
{
    private const long RamSize = 64L << 20;

    private string _directory = null!;

    [SetUp]
    public void CreateScratchDirectory()
    {
        Assert.That(File.Exists(QemuPeer.Binary), Is.True, "QEMU 7.2 is required: apt-get install qemu-system-x86");
        _directory = Path.Combine(Path.GetTempPath(), $"minivmm-ram-{Guid.NewGuid():n}");
        Directory.CreateDirectory(_directory);
    }

    [TearDown]
    public void DeleteScratchDirectory() => Directory.Delete(_directory, recursive: true);

    [Test]
    public void AStreamFromQemuLoadsIntoMiniVmmWithTheSameRam()
    {
        var loaders = WriteLoaderInputs();
        string stream = Path.Combine(_directory, "from-qemu.bin");
        byte[] expected;
        using (var qemu = new QemuPeer(_directory, RamSize, loaders.SelectMany(l => new[] { "-device", $"loader,file={l.Path},addr=0x{l.Address:x}" })))
        {
            qemu.Qmp.Execute("migrate", new { uri = $"exec:cat > {stream}" });
            qemu.WaitForMigration(TimeSpan.FromSeconds(10));
            expected = qemu.PhysicalMemory(0, RamSize);
        }

        using var machine = new MachineNoneHarness(RamSize);
        machine.Load(File.ReadAllBytes(stream));

        byte[] actual = machine.ReadAllRam();
        Assert.That(actual.AsSpan().SequenceEqual(expected), Is.True, "RAM differs from QEMU's pmemsave");
        foreach ((string path, long address) in loaders)
        {
            byte[] content = File.ReadAllBytes(path);
            Assert.That(actual.AsSpan((int)address, content.Length).SequenceEqual(content), Is.True, $"loader input at 0x{address:x}");
        }
    }

    [Test]
    public void AStreamFromMiniVmmLoadsIntoQemuWithTheSameRam()
    {
        string stream = Path.Combine(_directory, "from-minivmm.bin");
        byte[] expected;
        using (var machine = new MachineNoneHarness(RamSize))
        {
            foreach ((string path, long address) in WriteLoaderInputs())
            {
                machine.Memory.LoadFile(path, address);
            }

            File.WriteAllBytes(stream, machine.SaveStream(rateLimitBytes: 1 << 20));
            expected = machine.ReadAllRam();
        }

        using var qemu = new QemuPeer(_directory, RamSize, ["-incoming", "defer"]);
        qemu.Qmp.Execute("migrate-incoming", new { uri = $"exec:cat {stream}" });
        qemu.WaitForMigration(TimeSpan.FromSeconds(10));
        byte[] actual = qemu.PhysicalMemory(0, RamSize);
        string status = qemu.Qmp.Execute("query-status")!["status"]!.GetValue<string>();

        Assert.That(qemu.StandardError, Is.Empty);
        Assert.That(status, Is.EqualTo("prelaunch"));
        Assert.That(Convert.ToHexString(SHA256.HashData(actual)), Is.EqualTo(Convert.ToHexString(SHA256.HashData(expected))));
    }

    /// <summary>Random loader inputs: a run of random pages with a zero page inside, a short odd-placed write, the last page.</summary>
    private List<(string Path, long Address)> WriteLoaderInputs()
    {
        var random = new Random(TestContext.CurrentContext.Random.Next());
        byte[] pages = new byte[40 * 4096];
        random.NextBytes(pages);
        pages.AsSpan(7 * 4096, 4096).Clear();
        byte[] small = new byte[777];
        random.NextBytes(small);
        byte[] last = new byte[4096];
        random.NextBytes(last);
        var inputs = new List<(string, long)>
        {
            (Path.Combine(_directory, "pages.bin"), 0x200000 + random.Next(0, 64) * 4096L),
            (Path.Combine(_directory, "small.bin"), 0x1234567),
            (Path.Combine(_directory, "last.bin"), RamSize - 4096),
        };
        File.WriteAllBytes(inputs[0].Item1, pages);
        File.WriteAllBytes(inputs[1].Item1, small);
        File.WriteAllBytes(inputs[2].Item1, last);
        return inputs;
    }
}
