using System.Text.Json.Nodes;
using MiniVmm.Migration.Control;

namespace MiniVmm.Migration.Tests.Control;

/// <summary><c>x-throttle-computed</c> and <c>avail-switchover-bandwidth</c> as the QMP parameter commands spell them.</summary>
[TestFixture]
public sealed class ConvergenceParameterTests
{
    [Test]
    public void Query_shows_the_computed_throttle_on_and_no_switchover_bandwidth_by_default()
    {
        JsonObject json = MigrationParameterNames.ToJson(new MigrationParameters());

        Assert.Multiple(() =>
        {
            Assert.That(json["x-throttle-computed"]?.GetValue<bool>(), Is.True);
            Assert.That(json["avail-switchover-bandwidth"]?.GetValue<long>(), Is.Zero);
            Assert.That(MigrationParameterNames.IsBoolean("x-throttle-computed"), Is.True);
            Assert.That(MigrationParameterNames.IsBoolean("avail-switchover-bandwidth"), Is.False);
        });
    }

    [Test]
    public void Both_can_be_set_and_read_back()
    {
        MigrationParameters set = MigrationParameterNames.Apply(
            new MigrationParameters(), new JsonObject { ["x-throttle-computed"] = false, ["avail-switchover-bandwidth"] = 1L << 30 });

        Assert.Multiple(() =>
        {
            Assert.That(set.XThrottleComputed, Is.False);
            Assert.That(set.AvailSwitchoverBandwidth, Is.EqualTo(1L << 30));
            Assert.That(MigrationParameterNames.ToJson(set)["x-throttle-computed"]?.GetValue<bool>(), Is.False);
        });
    }

    [Test]
    public void A_number_for_the_boolean_is_refused_with_qemus_wording_and_nothing_changes()
    {
        var error = Assert.Throws<ArgumentException>(() => MigrationParameterNames.Apply(
            new MigrationParameters(), new JsonObject { ["avail-switchover-bandwidth"] = 5L, ["x-throttle-computed"] = 1 }));

        Assert.That(error!.Message, Is.EqualTo("Invalid parameter type for 'x-throttle-computed', expected: boolean"));
    }

    [Test]
    public void A_negative_switchover_bandwidth_is_refused_with_qemus_wording()
    {
        var error = Assert.Throws<ArgumentException>(() => MigrationParameterNames.Apply(
            new MigrationParameters(), new JsonObject { ["avail-switchover-bandwidth"] = -1L }));

        Assert.That(error!.Message, Is.EqualTo($"Parameter 'avail_switchover_bandwidth' expects an integer in the range of 0 to {long.MaxValue}"));
    }
}
