using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.EndToEnd;

/// <summary>Command-line errors of a real <c>minivmm</c> process, and the demo.</summary>
[TestFixture]
public sealed class CommandLineProcessTests
{
    [Test]
    public async Task Unknown_option_exits_1_naming_it()
    {
        await using MiniVmmProcess vm = MiniVmmProcess.Start("run", "-M", "none", "-frobnicate", "yes");

        Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(vm.Stderr, Does.Contain("-frobnicate"));
    }

    [Test]
    public async Task Bad_memory_size_exits_1_with_a_clear_error()
    {
        await using MiniVmmProcess vm = MiniVmmProcess.Start("run", "-m", "lots", "-S");

        Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(vm.Stderr, Does.Contain("-m lots").And.Contain("Parameter 'size'"));
    }

    [Test]
    public async Task Unsupported_machine_is_named()
    {
        await using MiniVmmProcess vm = MiniVmmProcess.Start("run", "-M", "pc", "-S");

        Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(vm.Stderr, Does.Contain("'pc'"));
    }

    [Test]
    public async Task Non_unix_qmp_is_an_error()
    {
        await using MiniVmmProcess vm = MiniVmmProcess.Start("run", "-S", "-qmp", "tcp:127.0.0.1:4444,server,nowait");

        Assert.That(await vm.WaitForExitAsync(), Is.EqualTo(1));
        Assert.That(vm.Stderr, Does.Contain("only unix: sockets"));
    }

    [Test]
    public async Task Demo_migrates_the_dirtying_guest_live_and_passes_its_checks()
    {
        // Exactly what the README's first command runs: 1 GiB, dirtying guest, TCP loopback.
        await using MiniVmmProcess demo = MiniVmmProcess.Start("demo");

        int exitCode = await demo.WaitForExitAsync(TimeSpan.FromMinutes(5));

        Assert.That(exitCode, Is.EqualTo(0), $"stdout:\n{demo.Stdout}\nstderr:\n{demo.Stderr}");
        Assert.That(demo.Stdout, Does.Contain("pass").And.Contain("downtime").And.Contain("zero pages sent")
            .And.Contain("consistent: ").And.Contain("demo passed"));
    }

    [Test]
    public async Task Demo_with_the_rust_guest_harness_proves_no_write_was_lost()
    {
        // `./minivmm demo --guest harness`, smaller: the Rust dirty-guest on both sides.
        string binary = GuestHarnessBinary.DirtyGuest;
        await using MiniVmmProcess demo = MiniVmmProcess.Start("demo", "--guest", "harness", "--ram", "256M", "--harness-binary", binary);

        int exitCode = await demo.WaitForExitAsync(TimeSpan.FromMinutes(5));

        Assert.That(exitCode, Is.EqualTo(0), $"stdout:\n{demo.Stdout}\nstderr:\n{demo.Stderr}");
        Assert.That(demo.Stdout, Does.Contain("Rust guest harness").And.Contain("no lost write")
            .And.Contain("demo passed"));
    }
}
