using MiniVmm.Host.Qmp;
using MiniVmm.Native;

namespace MiniVmm.Host.Tests.Qmp;

[TestFixture]
public sealed class QmpSessionTests
{
    [Test]
    public void Taking_gives_the_first_of_the_latest_batch_and_closes_the_rest()
    {
        var session = new QmpSession();
        using PipeEnds older = Pipe.Create();
        using PipeEnds a = Pipe.Create();
        using PipeEnds b = Pipe.Create();
        session.AddReceivedDescriptors([older.Write]);
        session.AddReceivedDescriptors([a.Write, b.Write]);
        Assert.That(older.Write.IsClosed, Is.True, "a new batch replaces an untaken one");
        Assert.That(session.ReceivedDescriptorCount, Is.EqualTo(2));

        using FileDescriptorHandle? taken = session.TakeReceivedDescriptor();
        Assert.That(taken, Is.SameAs(a.Write));
        Assert.That(b.Write.IsClosed, Is.True);
        Assert.That(session.TakeReceivedDescriptor(), Is.Null);
    }

    [Test]
    public void Closing_closes_the_untaken_and_anything_received_later()
    {
        var session = new QmpSession();
        using PipeEnds first = Pipe.Create();
        using PipeEnds late = Pipe.Create();
        session.AddReceivedDescriptors([first.Write]);
        session.CloseReceivedDescriptors();
        session.AddReceivedDescriptors([late.Write]);

        Assert.That(first.Write.IsClosed, Is.True);
        Assert.That(late.Write.IsClosed, Is.True);
        Assert.That(session.TakeReceivedDescriptor(), Is.Null);
    }
}
