using System.Text;
using MiniVmm.Migration.Transport;

namespace MiniVmm.Migration.Tests.Transport;

/// <summary>
/// <c>exec:</c> runs the operator's command with <c>/bin/sh -c</c>, as QEMU does; the migration
/// stream only flows through the command's standard input or output, so shell syntax in the
/// stream is data, never run.
/// </summary>
[TestFixture]
public sealed class ExecCommandStreamTests
{
    private string _directory = null!;

    // Shell syntax that would create the marker file if it ever reached a shell.
    private string Hostile => $"$(touch {Marker}) `touch {Marker}`; touch {Marker}\n| touch {Marker} && touch {Marker}\0";

    private string Marker => Path.Combine(_directory, "ran");

    [SetUp]
    public void SetUp() => _directory = Directory.CreateTempSubdirectory("exec-tests-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_directory, recursive: true);

    [Test]
    public void Outgoing_stream_bytes_reach_the_command_as_data_only()
    {
        string output = Path.Combine(_directory, "out.bin");
        byte[] data = Encoding.UTF8.GetBytes(Hostile);

        using (ExecCommandStream stream = ExecCommandStream.StartOutgoing($"cat > '{output}'"))
        {
            stream.Write(data);
        }

        Assert.That(File.ReadAllBytes(output), Is.EqualTo(data));
        Assert.That(File.Exists(Marker), Is.False, "stream bytes were run by a shell");
    }

    [Test]
    public void Incoming_stream_bytes_come_from_the_command_as_data_only()
    {
        string input = Path.Combine(_directory, "in.bin");
        byte[] data = Encoding.UTF8.GetBytes(Hostile);
        File.WriteAllBytes(input, data);

        byte[] read;
        using (ExecCommandStream stream = ExecCommandStream.StartIncoming($"cat '{input}'"))
        using (var copy = new MemoryStream())
        {
            stream.CopyTo(copy);
            read = copy.ToArray();
        }

        Assert.That(read, Is.EqualTo(data));
        Assert.That(File.Exists(Marker), Is.False, "stream bytes were run by a shell");
    }

    [Test]
    public void The_command_is_the_operators_string_run_by_sh_c()
    {
        string output = Path.Combine(_directory, "out.txt");

        using (ExecCommandStream stream = ExecCommandStream.StartOutgoing($"cat > '{output}'; echo done >> '{output}'"))
        {
            Assert.That(stream.Command, Is.EqualTo($"cat > '{output}'; echo done >> '{output}'"));
            stream.Write("x\n"u8);
        }

        Assert.That(File.ReadAllText(output), Is.EqualTo("x\ndone\n"), "the operator's command is a shell command line, as in QEMU");
    }
}
