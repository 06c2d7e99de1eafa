using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.VMState;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Savevm;

[TestFixture]
public sealed class SaveStateRegistryTests
{
    private static readonly VMStateDescription<CounterDevice> IommuCounter =
        VMStateDescription<CounterDevice>.Build("iommu-counter", version: 1, minimumVersion: 1)
            .Priority(MigrationPriority.Iommu)
            .UInt32("count", device => ref device.Count)
            .Done();

    private static readonly VMStateDescription<CounterDevice> PciBusCounter =
        VMStateDescription<CounterDevice>.Build("pci-bus-counter", version: 1, minimumVersion: 1)
            .Priority(MigrationPriority.PciBus)
            .UInt32("count", device => ref device.Count)
            .Done();

    private readonly CallLog _log = new();
    private readonly BigLock _bql = new();

    private RecordingHandlers Handlers(string name) => new(name, _log, _bql);

    [Test]
    public void SectionIdsCountUpFromZeroInRegistrationOrder()
    {
        var registry = new SaveStateRegistry();

        SaveStateEntry first = registry.RegisterLive("first", 0, 1, Handlers("first"));
        SaveStateEntry second = registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice());
        SaveStateEntry third = registry.RegisterLive("third", 0, 1, Handlers("third"));

        Assert.That(new[] { first.SectionId, second.SectionId, third.SectionId }, Is.EqualTo(new[] { 0, 1, 2 }));
    }

    [Test]
    public void UnregisterThenRegisterGetsANewSectionIdNotTheFreedOne()
    {
        var registry = new SaveStateRegistry();
        RecordingHandlers handlers = Handlers("ram");
        SaveStateEntry original = registry.RegisterLive("ram", 0, 4, handlers);
        registry.RegisterLive("other", 0, 1, Handlers("other"));

        Assert.That(registry.Unregister(original), Is.True);
        SaveStateEntry again = registry.RegisterLive("ram", 0, 4, handlers);

        Assert.That(again.SectionId, Is.EqualTo(2));
        Assert.That(registry.Entries.Select(e => e.SectionId), Is.EqualTo(new[] { 1, 2 }));
    }

    [Test]
    public void UnregisteringAnEntryTwiceReportsFalseTheSecondTime()
    {
        var registry = new SaveStateRegistry();
        SaveStateEntry entry = registry.RegisterLive("ram", 0, 4, Handlers("ram"));

        Assert.That(registry.Unregister(entry), Is.True);
        Assert.That(registry.Unregister(entry), Is.False);
        Assert.That(registry.Entries, Is.Empty);
    }

    [Test]
    public void InstanceAnyIsOneMoreThanTheHighestInstanceOfThatName()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("dev", 0, 1, Handlers("dev0"));
        registry.RegisterLive("dev", 5, 1, Handlers("dev5"));
        registry.RegisterLive("other", 9, 1, Handlers("other"));

        SaveStateEntry any = registry.RegisterLive("dev", SaveStateRegistry.InstanceIdAny, 1, Handlers("devAny"));
        SaveStateEntry firstOfItsName = registry.RegisterLive("fresh", SaveStateRegistry.InstanceIdAny, 1, Handlers("fresh"));

        Assert.That(any.InstanceId, Is.EqualTo(6u));
        Assert.That(firstOfItsName.InstanceId, Is.EqualTo(0u));
    }

    [Test]
    public void InstanceAnyForVMStateCountsPerDescriptionName()
    {
        var registry = new SaveStateRegistry();

        SaveStateEntry first = registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice());
        SaveStateEntry second = registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice());
        SaveStateEntry latch = registry.RegisterVMState(LatchDevice.Vmsd, new LatchDevice());

        Assert.That(new[] { first.InstanceId, second.InstanceId, latch.InstanceId }, Is.EqualTo(new[] { 0u, 1u, 0u }));
    }

    [Test]
    public void ExplicitInstanceIsKept()
    {
        var registry = new SaveStateRegistry();

        SaveStateEntry live = registry.RegisterLive("dev", 7, 1, Handlers("dev"));
        SaveStateEntry vmstate = registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice(), instanceId: 3);

        Assert.That(live.InstanceId, Is.EqualTo(7u));
        Assert.That(vmstate.InstanceId, Is.EqualTo(3u));
    }

    [Test]
    public void EntriesAreOrderedByDescendingPriorityThenRegistration()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("default-1", 0, 1, Handlers("default-1"));
        registry.RegisterVMState(IommuCounter, new CounterDevice(), instanceId: 0);
        registry.RegisterLive("default-2", 0, 1, Handlers("default-2"));
        registry.RegisterVMState(PciBusCounter, new CounterDevice(), instanceId: 0);
        registry.RegisterVMState(IommuCounter, new CounterDevice(), instanceId: 1);
        registry.RegisterLive("gic", 0, 1, Handlers("gic"), MigrationPriority.GicV3);
        registry.RegisterLive("default-3", 0, 1, Handlers("default-3"));

        Assert.That(
            registry.Entries.Select(e => $"{e.IdStr}#{e.InstanceId}"),
            Is.EqualTo(new[]
            {
                "gic#0", "pci-bus-counter#0", "iommu-counter#0", "iommu-counter#1",
                "default-1#0", "default-2#0", "default-3#0",
            }));
    }

    [Test]
    public void DuplicateIdStrAndInstanceIsRejectedNamingBoth()
    {
        var registry = new SaveStateRegistry();
        SaveStateEntry existing = registry.RegisterLive("ram", 0, 4, Handlers("ram"));

        var error = Assert.Throws<DuplicateSaveStateEntryException>(
            () => registry.RegisterVMState(
                VMStateDescription<CounterDevice>.Build("ram", 1, 1).UInt32("count", d => ref d.Count).Done(),
                new CounterDevice(),
                instanceId: 0))!;

        Assert.That(error.Existing, Is.SameAs(existing));
        Assert.That(error.Message, Does.StartWith("Detected duplicate SaveStateEntry: id=ram, instance_id=0x0"));
        Assert.That(error.Message, Does.Contain($"section {existing.SectionId}").And.Contain(nameof(RecordingHandlers)));
        Assert.That(registry.Entries, Has.Count.EqualTo(1));
    }

    [Test]
    public void ARejectedDuplicateLeavesTheRegistryUnchanged()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("ram", 0, 4, Handlers("ram"));

        Assert.Throws<DuplicateSaveStateEntryException>(() => registry.RegisterLive("ram", 0, 4, Handlers("ram2")));
        SaveStateEntry next = registry.RegisterLive("ram", 1, 4, Handlers("ram1"));

        Assert.That(registry.Entries.Select(e => e.InstanceId), Is.EqualTo(new[] { 0u, 1u }));
        Assert.That(next.IdStr, Is.EqualTo("ram"));
    }

    [Test]
    public void DevicePathPrefixesTheIdStrAndKeepsTheBareNameAsCompat()
    {
        var registry = new SaveStateRegistry();

        SaveStateEntry entry = registry.RegisterVMState(
            CounterDevice.Vmsd, new CounterDevice(), instanceId: 2, devicePath: "0000:00:03.0");

        Assert.That(entry.IdStr, Is.EqualTo("0000:00:03.0/counter"));
        Assert.That(entry.InstanceId, Is.EqualTo(0u));
        Assert.That(entry.Compat, Is.EqualTo(new SectionName("counter", 2)));
        Assert.That(registry.FindForLoad("0000:00:03.0/counter", 0), Is.SameAs(entry));
        Assert.That(registry.FindForLoad("counter", 2), Is.SameAs(entry));
        Assert.That(registry.FindForLoad("counter", 0), Is.Null);
    }

    [Test]
    public void CompatInstancesCountUpPerBareNameWithInstanceAny()
    {
        var registry = new SaveStateRegistry();

        SaveStateEntry first = registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice(), devicePath: "pci0");
        SaveStateEntry second = registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice(), devicePath: "pci1");

        Assert.That(first.Compat, Is.EqualTo(new SectionName("counter", 0)));
        Assert.That(second.Compat, Is.EqualTo(new SectionName("counter", 1)));
        Assert.That(registry.FindForLoad("counter", 1), Is.SameAs(second));
        Assert.That(registry.FindForLoad("pci1/counter", 0), Is.SameAs(second));
    }

    [Test]
    public void AliasIdIsAcceptedOnLoad()
    {
        var registry = new SaveStateRegistry();

        SaveStateEntry entry = registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice(), instanceId: 0, aliasId: 4);

        Assert.That(registry.FindForLoad("counter", 0), Is.SameAs(entry));
        Assert.That(registry.FindForLoad("counter", 4), Is.SameAs(entry));
        Assert.That(registry.FindForLoad("counter", 3), Is.Null);
        Assert.That(registry.FindForLoad("other", 4), Is.Null);
    }

    [Test]
    public void WithoutAnAliasNoOtherInstanceMatches()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice(), instanceId: 0);

        Assert.That(registry.FindForLoad("counter", uint.MaxValue), Is.Null);
    }

    [Test]
    public void AnIdStrOfExactly255BytesIsAccepted()
    {
        var registry = new SaveStateRegistry();
        string name = new('x', SaveStateRegistry.MaxIdStrBytes);

        SaveStateEntry entry = registry.RegisterLive(name, 0, 1, Handlers("long"));

        Assert.That(entry.IdStr, Has.Length.EqualTo(255));
    }

    [Test]
    public void AnIdStrLongerThan255BytesIsRejected()
    {
        var registry = new SaveStateRegistry();

        Assert.That(
            () => registry.RegisterLive(new string('x', 256), 0, 1, Handlers("long")),
            Throws.ArgumentException.With.Message.Contains("256 bytes"));
        // 128 two-byte characters: 128 characters but 256 UTF-8 bytes.
        Assert.That(
            () => registry.RegisterLive(new string('é', 128), 0, 1, Handlers("long")),
            Throws.ArgumentException);
        Assert.That(
            () => registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice(), devicePath: new string('p', 248)),
            Throws.ArgumentException, "path + '/' + 'counter' is 256 bytes");
        Assert.That(registry.Entries, Is.Empty);
    }

    [Test]
    public void UnregisterLiveRemovesEveryEntryWithThatIdStrAndOwnerOnly()
    {
        var registry = new SaveStateRegistry();
        RecordingHandlers owner = Handlers("owner");
        RecordingHandlers stranger = Handlers("stranger");
        registry.RegisterLive("dev", 0, 1, owner);
        registry.RegisterLive("dev", 1, 1, owner);
        SaveStateEntry otherOwner = registry.RegisterLive("dev", 2, 1, stranger);
        SaveStateEntry otherName = registry.RegisterLive("other", 0, 1, owner);

        int removed = registry.UnregisterLive("dev", owner);

        Assert.That(removed, Is.EqualTo(2));
        Assert.That(registry.Entries, Is.EqualTo(new[] { otherOwner, otherName }));
        Assert.That(registry.UnregisterLive("dev", owner), Is.Zero);
    }

    [Test]
    public void UnregisterVMStateRemovesEveryEntryOfThatDescriptionAndStateOnly()
    {
        var registry = new SaveStateRegistry();
        var device = new CounterDevice();
        var otherDevice = new CounterDevice();
        registry.RegisterVMState(CounterDevice.Vmsd, device, instanceId: 0);
        registry.RegisterVMState(CounterDevice.Vmsd, device, instanceId: 1);
        SaveStateEntry sameDescriptionOtherState = registry.RegisterVMState(CounterDevice.Vmsd, otherDevice, instanceId: 2);
        SaveStateEntry sameStateOtherDescription = registry.RegisterVMState(IommuCounter, device, instanceId: 0);

        int removed = registry.UnregisterVMState(CounterDevice.Vmsd, device);

        Assert.That(removed, Is.EqualTo(2));
        Assert.That(registry.Entries, Is.EquivalentTo(new[] { sameDescriptionOtherState, sameStateOtherDescription }));
    }

    [Test]
    public void EntriesIsASnapshotUnaffectedByLaterRegistrations()
    {
        var registry = new SaveStateRegistry();
        registry.RegisterLive("a", 0, 1, Handlers("a"));
        IReadOnlyList<SaveStateEntry> before = registry.Entries;

        registry.RegisterLive("b", 0, 1, Handlers("b"));

        Assert.That(before, Has.Count.EqualTo(1));
        Assert.That(registry.Entries, Has.Count.EqualTo(2));
    }

    [Test]
    public void EntryFlagsFollowTheHandlerFeatures()
    {
        var registry = new SaveStateRegistry();
        SaveStateEntry live = registry.RegisterLive("live", 0, 1, Handlers("live"));
        SaveStateEntry legacy = registry.RegisterLive(
            "legacy", 0, 1, new RecordingHandlers("legacy", _log, _bql, SaveVmHandlerFeatures.SaveState));
        SaveStateEntry vmstate = registry.RegisterVMState(CounterDevice.Vmsd, new CounterDevice());

        Assert.That((live.IsIterable, live.HasFullSection), Is.EqualTo((true, false)));
        Assert.That((legacy.IsIterable, legacy.HasFullSection), Is.EqualTo((false, true)));
        Assert.That((vmstate.IsIterable, vmstate.HasFullSection), Is.EqualTo((false, true)));
        Assert.That(vmstate.VersionId, Is.EqualTo(2));
    }
}
