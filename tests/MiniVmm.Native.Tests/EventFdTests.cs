using MiniVmm.Native;

namespace MiniVmm.Native.Tests;

public sealed class EventFdTests
{
    [Test]
    public void WaitReturnsTheSumOfSignalsAndResetsTheCounter()
    {
        using FileDescriptorHandle eventFd = EventFd.Create(initialValue: 2, EventFdFlags.CloseOnExec | EventFdFlags.NonBlocking);
        EventFd.Signal(eventFd);
        EventFd.Signal(eventFd, 5);
        Assert.That(EventFd.Wait(eventFd), Is.EqualTo(8));
        Assert.That(EventFd.TryRead(eventFd, out ulong value), Is.False);
        Assert.That(value, Is.Zero);
    }

    [Test]
    public void SemaphoreModeTakesOneAtATime()
    {
        using FileDescriptorHandle eventFd = EventFd.Create(0, EventFdFlags.Semaphore | EventFdFlags.NonBlocking);
        EventFd.Signal(eventFd, 3);
        Assert.That(EventFd.TryRead(eventFd, out ulong first), Is.True);
        Assert.That(EventFd.TryRead(eventFd, out ulong second), Is.True);
        Assert.That(EventFd.TryRead(eventFd, out ulong third), Is.True);
        Assert.That(new[] { first, second, third }, Is.All.EqualTo(1));
        Assert.That(EventFd.TryRead(eventFd, out _), Is.False);
    }

    [Test]
    public void WaitBlocksUntilAnotherThreadSignals()
    {
        using FileDescriptorHandle eventFd = EventFd.Create();
        Task<ulong> waiter = Task.Factory.StartNew(() => EventFd.Wait(eventFd), TaskCreationOptions.LongRunning);
        Assert.That(waiter.Wait(TimeSpan.FromMilliseconds(100)), Is.False);
        EventFd.Signal(eventFd, 4);
        Assert.That(waiter.Wait(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(waiter.Result, Is.EqualTo(4));
    }
}
