using MiniVmm.Migration.VMState;
using static MiniVmm.Migration.Tests.VMState.VMStateStreams;

namespace MiniVmm.Migration.Tests.VMState;

public sealed class HookTests
{
    [Test]
    public void Hooks_run_in_order_around_fields_and_subsections()
    {
        var calls = new List<string>();
        VMStateDescription<Device> sub = VMStateDescription<Device>.Build("dev/sub", 1, 1)
            .UInt8("b", s => ref s.B)
            .PreSave(_ => calls.Add("sub pre-save"))
            .PostLoad((_, v) => calls.Add($"sub post-load v{v}"))
            .Done();
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 2, 1)
            .UInt8("a", s => { calls.Add("field a"); return ref s.A; })
            .Subsection(sub)
            .PreSave(_ => calls.Add("pre-save"))
            .PostSave(_ => calls.Add("post-save"))
            .PreLoad(_ => calls.Add("pre-load"))
            .PostLoad((_, v) => calls.Add($"post-load v{v}"))
            .Done();

        byte[] bytes = Save(description, new Device());
        Assert.That(calls, Is.EqualTo(new[] { "pre-save", "field a", "sub pre-save", "post-save" }));

        calls.Clear();
        Load(description, bytes, new Device(), versionId: 1);
        Assert.That(calls, Is.EqualTo(new[] { "pre-load", "field a", "sub post-load v1", "post-load v1" }));
    }

    [Test]
    public void Failing_pre_save_stops_the_save_without_post_save()
    {
        bool postSaveCalled = false;
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .UInt8("a", s => ref s.A)
            .PreSave(_ => throw new InvalidOperationException("not now"))
            .PostSave(_ => postSaveCalled = true)
            .Done();

        var error = Assert.Throws<VMStateException>(() => Save(description, new Device()))!;

        Assert.That(error.Detail, Is.EqualTo("pre-save failed: dev: not now"));
        Assert.That(error.InnerException, Is.TypeOf<InvalidOperationException>());
        Assert.That(postSaveCalled, Is.False);
    }

    [Test]
    public void Failing_field_save_still_runs_post_save()
    {
        bool postSaveCalled = false;
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .UInt8("a", s => ref s.A)
            .Buffer("missing", _ => throw new InvalidOperationException("no storage"))
            .PostSave(_ => postSaveCalled = true)
            .Done();

        var error = Assert.Throws<VMStateException>(() => Save(description, new Device()))!;

        Assert.That(error.Detail, Is.EqualTo("Save of field dev/missing failed: no storage"));
        Assert.That(error.Offset, Is.EqualTo(1));
        Assert.That(postSaveCalled, Is.True);
    }

    [Test]
    public void Failing_post_save_is_reported()
    {
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .PostSave(_ => throw new InvalidOperationException("oops"))
            .Done();

        var error = Assert.Throws<VMStateException>(() => Save(description, new Device()))!;

        Assert.That(error.Detail, Is.EqualTo("post-save failed: dev: oops"));
    }

    [Test]
    public void Failing_pre_load_and_post_load_are_reported()
    {
        VMStateDescription<Device> preLoad = VMStateDescription<Device>.Build("dev", 1, 1)
            .UInt8("a", s => ref s.A)
            .PreLoad(_ => throw new InvalidOperationException("busy"))
            .Done();
        VMStateDescription<Device> postLoad = VMStateDescription<Device>.Build("dev", 1, 1)
            .UInt8("a", s => ref s.A)
            .PostLoad((s, _) =>
            {
                if (s.A > 3)
                {
                    throw new ArgumentOutOfRangeException(nameof(s), "a is too big");
                }
            })
            .Done();
        var device = new Device();

        Assert.That(
            () => Load(preLoad, [9], device),
            Throws.TypeOf<VMStateException>().With.Property("Detail").EqualTo("pre-load failed: dev: busy"));
        Assert.That(device.A, Is.EqualTo(0), "nothing is loaded after a failed pre-load");
        Assert.That(
            () => Load(postLoad, [9], device),
            Throws.TypeOf<VMStateException>().With.Property("Detail").StartsWith("post-load failed: dev: a is too big"));
        Assert.That(Load(postLoad, [2], device), Is.EqualTo(1));
    }

    [Test]
    public void Hooks_can_be_set_only_once()
    {
        VMStateDescriptionBuilder<Device> builder = VMStateDescription<Device>.Build("dev", 1, 1).PreSave(_ => { });

        Assert.That(() => builder.PreSave(_ => { }), Throws.InvalidOperationException);
    }

    [Test]
    public void Typed_and_untyped_entry_points_agree_and_check_the_state_type()
    {
        VMStateDescription<Device> description = VMStateDescription<Device>.Build("dev", 1, 1)
            .UInt8("a", s => ref s.A)
            .Needed(s => s.A != 0)
            .Priority(MigrationPriority.PciBus)
            .Done();
        VMStateDescription untyped = description;

        Assert.That(untyped.IsNeeded(new Device { A = 1 }), Is.True);
        Assert.That(untyped.IsNeeded(new Device()), Is.False);
        Assert.That(untyped.StateType, Is.EqualTo(typeof(Device)));
        Assert.That(untyped.Priority, Is.EqualTo(MigrationPriority.PciBus));
        Assert.That((untyped.Unmigratable, untyped.EarlySetup), Is.EqualTo((false, false)));
        Assert.That(() => untyped.IsNeeded("not a device"), Throws.ArgumentException);
    }

    private sealed class Device
    {
        public byte A;
        public byte B;
    }
}
