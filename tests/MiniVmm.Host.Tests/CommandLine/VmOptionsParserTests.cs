using MiniVmm.Host.CommandLine;

namespace MiniVmm.Host.Tests.CommandLine;

[TestFixture]
public sealed class VmOptionsParserTests
{
    [TestCase("64M", 64UL << 20)]
    [TestCase("1G", 1UL << 30)]
    [TestCase("512", 512UL << 20)]
    [TestCase("2048M", 2048UL << 20)]
    [TestCase("size=1G", 1UL << 30)]
    [TestCase("1.5G", 3UL << 29)]
    [TestCase("64k", 64UL << 10)]
    [TestCase("1T", 1UL << 40)]
    [TestCase("100000B", 106496UL)]
    public void Memory_sizes_follow_QEMU(string text, ulong expected) =>
        Assert.That(VmOptionsParser.ParseMemory(text), Is.EqualTo(expected));

    [TestCase("lots")]
    [TestCase("64Q")]
    [TestCase("-5")]
    [TestCase("")]
    [TestCase("1.5B")]
    [TestCase("99999999999999999999")]
    [TestCase("16E")]
    [TestCase("64M,slots=2")]
    public void Bad_memory_sizes_are_errors_naming_the_option(string text)
    {
        var error = Assert.Throws<InvalidCommandLineException>(() => VmOptionsParser.ParseMemory(text));
        Assert.That(error!.Message, Does.StartWith("-m "));
    }

    [Test]
    public void Machine_none_keeps_its_properties()
    {
        MachineSelection machine = VmOptionsParser.ParseMachine("none,accel=tcg,dump-guest-core=off");

        Assert.That(machine.Type, Is.EqualTo("none"));
        Assert.That(machine.Properties, Is.EquivalentTo(new Dictionary<string, string> { ["accel"] = "tcg", ["dump-guest-core"] = "off" }));
        Assert.That(VmOptionsParser.ParseMachine("type=none").Type, Is.EqualTo("none"));
    }

    [Test]
    public void Other_machines_are_errors_naming_them()
    {
        var error = Assert.Throws<InvalidCommandLineException>(() => VmOptionsParser.ParseMachine("q35,accel=kvm"));
        Assert.That(error!.Message, Does.Contain("'q35'"));
    }

    [TestCase("unix:/tmp/q.sock,server,nowait", "/tmp/q.sock", false)]
    [TestCase("unix:/tmp/q.sock,server=on,wait=off", "/tmp/q.sock", false)]
    [TestCase("unix:/tmp/q.sock,server=on", "/tmp/q.sock", true)]
    [TestCase("unix:path=/tmp/a,,b.sock,server=on,wait=off", "/tmp/a,b.sock", false)]
    public void Qmp_unix_sockets(string text, string path, bool wait)
    {
        var socket = VmOptionsParser.ParseQmp(text);

        Assert.That(socket.Path, Is.EqualTo(path));
        Assert.That(socket.Wait, Is.EqualTo(wait));
    }

    [TestCase("tcp:localhost:4444,server,nowait", "only unix: sockets")]
    [TestCase("stdio", "only unix: sockets")]
    [TestCase("unix:/tmp/q.sock", "only listening sockets")]
    [TestCase("unix:/tmp/q.sock,server,nowait,telnet", "Invalid parameter 'telnet'")]
    [TestCase("unix:/tmp/q.sock,server=maybe", "expects 'on' or 'off'")]
    public void Bad_qmp_options_are_clear_errors(string text, string message)
    {
        var error = Assert.Throws<InvalidCommandLineException>(() => VmOptionsParser.ParseQmp(text));
        Assert.That(error!.Message, Does.Contain(message).And.Contain(text));
    }

    [Test]
    public void Name_display_and_defaults()
    {
        VmOptions options = VmOptionsParser.Parse(new RunArguments
        {
            Name = ["first", "guest=vm1,,x,debug-threads=on"],
            Display = ["none"],
            StartPaused = true,
        });

        Assert.That(options.Name, Is.EqualTo("vm1,x"));
        Assert.That(options.Display, Is.EqualTo("none"));
        Assert.That(options.StartPaused, Is.True);
        Assert.That(options.Machine.Type, Is.EqualTo("none"));
        Assert.That(options.MemoryBytes, Is.Zero);
        Assert.Throws<InvalidCommandLineException>(() => VmOptionsParser.ParseDisplay("gtk"));
        Assert.Throws<InvalidCommandLineException>(() => VmOptionsParser.ParseName("vm,colour=red"));
    }

    [Test]
    public void Command_line_parses_QEMU_spelling()
    {
        var run = new RunCommand();
        var root = new System.CommandLine.RootCommand { run };

        System.CommandLine.ParseResult result = root.Parse(
            ["run", "-M", "none", "-m", "64M", "-S", "-nodefaults", "-display", "none", "-name", "guest=a", "-qmp", "unix:/tmp/x.sock,server,nowait", "-qmp", "unix:/tmp/y.sock,server=on,wait=off"],
            MiniVmmCommandLine.ParserConfiguration);

        Assert.That(result.Errors, Is.Empty);
        VmOptions options = VmOptionsParser.Parse(run.ReadArguments(result));
        Assert.That(options.MemoryBytes, Is.EqualTo(64UL << 20));
        Assert.That(options.StartPaused && options.NoDefaults, Is.True);
        Assert.That(options.QmpSockets.Select(s => s.Path), Is.EqualTo(new[] { "/tmp/x.sock", "/tmp/y.sock" }));
    }

    [Test]
    public void Guest_harness_takes_its_socket_and_timeouts()
    {
        GuestSelection guest = VmOptionsParser.ParseGuest("harness,socket=/tmp/h.sock,pause-timeout=150,connect-timeout=4000");

        Assert.That(guest.DirtyRate, Is.Null);
        Assert.That(guest.Harness, Is.EqualTo(new MiniVmm.GuestHarness.HarnessGuestOptions(
            "/tmp/h.sock", TimeSpan.FromMilliseconds(150), TimeSpan.FromMilliseconds(4000))));
        Assert.That(VmOptionsParser.ParseGuest("harness,socket=/x").Harness!.PauseTimeout, Is.EqualTo(TimeSpan.FromSeconds(2)));
        Assert.That(VmOptionsParser.ParseGuest("dirty,rate=5"), Is.EqualTo(new GuestSelection(5, null)));
        Assert.That(VmOptionsParser.ParseGuest(null), Is.SameAs(GuestSelection.None));
    }

    [TestCase("harness", "needs socket=PATH")]
    [TestCase("harness,socket=", "needs socket=PATH")]
    [TestCase("harness,socket=/x,pause-timeout=0", "pause-timeout must be a positive number of milliseconds")]
    [TestCase("harness,socket=/x,connect-timeout=soon", "connect-timeout must be a positive number")]
    [TestCase("harness,socket=/x,rate=5", "'rate' is not an option of the 'harness' guest")]
    [TestCase("dirty,socket=/x", "'socket' is not an option of the 'dirty' guest")]
    [TestCase("rust", "unknown guest 'rust'")]
    public void Bad_guest_options_are_one_line_errors_naming_the_option(string text, string expected)
    {
        var error = Assert.Throws<InvalidCommandLineException>(() => VmOptionsParser.ParseGuest(text));
        Assert.That(error!.Message, Does.StartWith($"-guest {text}: ").And.Contain(expected));
    }
}
