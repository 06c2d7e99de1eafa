using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Host.CommandLine;
using MiniVmm.Host.Hosting;
using MiniVmm.Migration.Control;

namespace MiniVmm.Host.Tests.Hosting;

/// <summary><c>minivmm run</c>'s container gives migration a meter from its <see cref="IMeterFactory"/>.</summary>
[TestFixture]
public sealed class MigrationTelemetryWiringTests
{
    [Test]
    public void The_coordinator_feeds_the_containers_MiniVmm_Migration_meter()
    {
        var options = new VmOptions { Machine = VmOptionsParser.ParseMachine("none"), MemoryBytes = 8 << 20 };
        using ServiceProvider services = new ServiceCollection().AddMiniVmmHost(options).BuildServiceProvider();
        MigrationCoordinator coordinator = services.GetRequiredService<MigrationCoordinator>();
        IMeterFactory factory = services.GetRequiredService<IMeterFactory>();

        Assert.Multiple(() =>
        {
            Assert.That(coordinator.Telemetry, Is.SameAs(services.GetRequiredService<MigrationTelemetry>()));
            Assert.That(coordinator.Telemetry.Meter.Name, Is.EqualTo("MiniVmm.Migration"));
            Assert.That(coordinator.Telemetry.Meter.Scope, Is.SameAs(factory), "made by the container's meter factory");
            Assert.That(coordinator.Telemetry.ActivitySource.Name, Is.EqualTo("MiniVmm.Migration"));
        });
    }
}
