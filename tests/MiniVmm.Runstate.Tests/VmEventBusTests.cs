using System.Text.Json.Nodes;

namespace MiniVmm.Runstate.Tests;

[TestFixture]
public sealed class VmEventBusTests
{
    private static readonly DateTimeOffset FixedNow = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    [Test]
    public void SubscribersGetEveryEventWithDataAndTimestamp()
    {
        var bus = new VmEventBus(new FixedTimeProvider(FixedNow));
        var received = new List<VmEvent>();
        bus.Subscribe(received.Add);
        var data = new JsonObject { ["status"] = "active" };

        VmEvent emitted = bus.Emit("MIGRATION", data);
        bus.Emit("STOP");

        Assert.That(received, Has.Count.EqualTo(2));
        Assert.That(received[0], Is.SameAs(emitted));
        Assert.That(emitted.Name, Is.EqualTo("MIGRATION"));
        Assert.That(emitted.Data, Is.SameAs(data));
        Assert.That(emitted.Timestamp, Is.EqualTo(FixedNow));
        Assert.That(received[1].Name, Is.EqualTo("STOP"));
        Assert.That(received[1].Data, Is.Null);
    }

    [Test]
    public void EmitWithoutSubscribersStillReturnsTheEvent()
    {
        var bus = new VmEventBus(new FixedTimeProvider(FixedNow));
        Assert.That(bus.Emit("RESUME"), Is.EqualTo(new VmEvent("RESUME", null, FixedNow)));
    }

    [Test]
    public void UnsubscribingStopsDeliveryAndASecondDisposeIsHarmless()
    {
        var bus = new VmEventBus(new FixedTimeProvider(FixedNow));
        var recorder = new CallRecorder();
        IDisposable first = bus.Subscribe(e => recorder.Add($"first {e.Name}"));
        bus.Subscribe(e => recorder.Add($"second {e.Name}"));

        bus.Emit("STOP");
        first.Dispose();
        first.Dispose();
        bus.Emit("RESUME");

        Assert.That(recorder.Calls, Is.EqualTo(new[] { "first STOP", "second STOP", "second RESUME" }));
    }

    [Test]
    public void TheSameDelegateSubscribedTwiceIsDeliveredTwiceAndRemovedOnce()
    {
        var bus = new VmEventBus(new FixedTimeProvider(FixedNow));
        var received = new List<string>();
        Action<VmEvent> handler = e => received.Add(e.Name);
        IDisposable first = bus.Subscribe(handler);
        bus.Subscribe(handler);

        bus.Emit("A");
        first.Dispose();
        first.Dispose();
        bus.Emit("B");

        Assert.That(received, Is.EqualTo(new[] { "A", "A", "B" }));
    }

    [Test]
    public void AThrowingSubscriberDoesNotStopTheOthers()
    {
        var bus = new VmEventBus(new FixedTimeProvider(FixedNow));
        var recorder = new CallRecorder();
        bus.Subscribe(e => recorder.Add($"before {e.Name}"));
        bus.Subscribe(_ => throw new InvalidOperationException("subscriber broke"));
        bus.Subscribe(e => recorder.Add($"after {e.Name}"));

        Assert.That(() => bus.Emit("STOP"), Throws.Nothing);
        Assert.That(recorder.Calls, Is.EqualTo(new[] { "before STOP", "after STOP" }));
    }

    [Test]
    public void ASubscriberAddedWhileEmittingGetsOnlyLaterEvents()
    {
        var bus = new VmEventBus(new FixedTimeProvider(FixedNow));
        var recorder = new CallRecorder();
        bool added = false;
        bus.Subscribe(e =>
        {
            recorder.Add($"first {e.Name}");
            if (!added)
            {
                added = true;
                bus.Subscribe(later => recorder.Add($"late {later.Name}"));
            }
        });

        bus.Emit("A");
        bus.Emit("B");

        Assert.That(recorder.Calls, Is.EqualTo(new[] { "first A", "first B", "late B" }));
    }

    [Test]
    public void SubscribeRejectsNull()
    {
        var bus = new VmEventBus(TimeProvider.System);
        Assert.That(() => bus.Subscribe(null!), Throws.ArgumentNullException);
    }
}
