using System.Text.Json.Nodes;
using MiniVmm.Migration.Control;

namespace MiniVmm.Migration.Tests.Stall;

/// <summary><c>x-stall-timeout</c> as <c>migrate-set-parameters</c> and <c>query-migrate-parameters</c> spell it.</summary>
[TestFixture]
public sealed class StallTimeoutParameterTests
{
    [Test]
    public void The_default_is_thirty_seconds_and_query_shows_it()
    {
        JsonObject json = MigrationParameterNames.ToJson(new MigrationParameters());

        Assert.That(json["x-stall-timeout"]?.GetValue<long>(), Is.EqualTo(30_000));
        Assert.That(MigrationParameterNames.All, Does.Contain("x-stall-timeout"));
    }

    [TestCase(0L)]
    [TestCase(250L)]
    [TestCase(86_400_000L)]
    public void Set_accepts_zero_for_off_and_milliseconds_up_to_a_day(long value)
    {
        MigrationParameters set = MigrationParameterNames.Apply(new MigrationParameters(), new JsonObject { ["x-stall-timeout"] = value });

        Assert.That(set.XStallTimeout, Is.EqualTo(value));
        Assert.That(MigrationParameterNames.ToJson(set)["x-stall-timeout"]?.GetValue<long>(), Is.EqualTo(value));
    }

    [TestCase(-1L)]
    [TestCase(86_400_001L)]
    public void Out_of_range_is_refused_with_qemus_wording(long value)
    {
        var error = Assert.Throws<ArgumentException>(() =>
            MigrationParameterNames.Apply(new MigrationParameters(), new JsonObject { ["x-stall-timeout"] = value }));

        Assert.That(error!.Message, Is.EqualTo("Parameter 'x_stall_timeout' expects an integer in the range of 0 to 86400000"));
    }
}
