using MiniVmm.Host.Qmp;
using MiniVmm.Native;

namespace MiniVmm.Host.Tests.Qmp;

[TestFixture]
public sealed class PassedDescriptorTableTests
{
    [Test]
    public void Adding_under_a_name_in_use_closes_the_older_descriptor()
    {
        using var table = new PassedDescriptorTable();
        using PipeEnds first = Pipe.Create();
        using PipeEnds second = Pipe.Create();
        table.Add("x", first.Write);
        table.Add("x", second.Write);

        Assert.That(first.Write.IsClosed, Is.True);
        Assert.That(second.Write.IsClosed, Is.False);
        Assert.That(table.Names, Is.EqualTo(new[] { "x" }));
    }

    [Test]
    public void Close_closes_and_forgets_and_is_false_for_an_unknown_name()
    {
        using var table = new PassedDescriptorTable();
        using PipeEnds pipe = Pipe.Create();
        table.Add("p", pipe.Write);

        Assert.That(table.Close("p"), Is.True);
        Assert.That(pipe.Write.IsClosed, Is.True);
        Assert.That(table.Close("p"), Is.False);
        Assert.That(table.Names, Is.Empty);
    }

    [Test]
    public void TakeStream_consumes_the_descriptor_and_makes_it_blocking()
    {
        using var table = new PassedDescriptorTable();
        using PipeEnds pipe = Pipe.Create(PipeFlags.CloseOnExec | PipeFlags.NonBlocking);
        table.Add("in", pipe.Read);

        using (Stream stream = table.TakeStream("in"))
        {
            Assert.That(pipe.Read.NonBlocking, Is.False);
            Assert.That(table.Names, Is.Empty);
            pipe.Write.WriteAll([1, 2, 3]);
            byte[] buffer = new byte[3];
            stream.ReadExactly(buffer);
            Assert.That(buffer, Is.EqualTo(new byte[] { 1, 2, 3 }));
        }

        Assert.That(pipe.Read.IsClosed, Is.True, "disposing the stream closes the taken descriptor");
    }

    [Test]
    public void TakeStream_of_an_unknown_name_gives_QEMUs_error()
    {
        using var table = new PassedDescriptorTable();
        var error = Assert.Throws<IOException>(() => table.TakeStream("nothere"));
        Assert.That(error!.Message, Is.EqualTo("File descriptor named 'nothere' has not been found"));
    }

    [Test]
    public void Dispose_closes_what_is_left()
    {
        var table = new PassedDescriptorTable();
        using PipeEnds pipe = Pipe.Create();
        table.Add("a", pipe.Write);
        table.Dispose();
        Assert.That(pipe.Write.IsClosed, Is.True);
    }
}
