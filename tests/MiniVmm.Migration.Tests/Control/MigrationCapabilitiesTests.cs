using MiniVmm.Migration.Control;

namespace MiniVmm.Migration.Tests.Control;

/// <summary>Capability names and QEMU's combination check.</summary>
[TestFixture]
public sealed class MigrationCapabilitiesTests
{
    [Test]
    public void Switchover_ack_without_return_path_is_refused_with_qemus_text()
    {
        MigrationCapabilities capabilities = MigrationCapabilities.None.With(MigrationCapabilities.SwitchoverAck, true);

        Assert.That(
            capabilities.Validate,
            Throws.ArgumentException.With.Message.EqualTo("Capability 'switchover-ack' requires capability 'return-path'"));
    }

    [Test]
    public void Switchover_ack_with_return_path_is_accepted()
    {
        MigrationCapabilities capabilities = MigrationCapabilities.None
            .With(MigrationCapabilities.SwitchoverAck, true)
            .With(MigrationCapabilities.ReturnPath, true);

        Assert.That(capabilities.Validate, Throws.Nothing);
        Assert.That(capabilities.IsEnabled(MigrationCapabilities.SwitchoverAck) && capabilities.IsEnabled(MigrationCapabilities.ReturnPath));
    }

    [TestCase("postcopy-ram")]
    [TestCase("xbzrle")]
    public void Capabilities_MiniVmm_does_not_implement_are_refused_when_turned_on(string name)
    {
        Assert.That(() => MigrationCapabilities.None.With(name, true),
            Throws.ArgumentException.With.Message.EqualTo($"Capability '{name}' is not supported by MiniVmm"));
        Assert.That(() => MigrationCapabilities.None.With(name, false), Throws.Nothing);
    }

    [Test]
    public void Multifd_can_be_turned_on_and_off()
    {
        MigrationCapabilities on = MigrationCapabilities.None.With(MigrationCapabilities.Multifd, true);
        Assert.That(on.IsEnabled("multifd"), Is.True);
        Assert.That(on.With("multifd", false).IsEnabled("multifd"), Is.False);
    }

    [Test]
    public void An_unknown_name_is_refused() =>
        Assert.That(() => MigrationCapabilities.None.With("no-such-thing", true),
            Throws.ArgumentException.With.Message.EqualTo("Parameter 'capability' does not accept value 'no-such-thing'"));
}
